"""Where extract's hand search spends its time on the woman's clip (issue 16, the 60 frames/s
goal): the palm detector's and the hand-landmark network's calls and seconds, beside the whole
extraction, one process, one thread.

    python benchmarks/hands_profile.py [--publish]   # benchmarks/results/hands-profile-cpu.json
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from facetwin.extract import hands  # noqa: E402
from facetwin.extract.pipeline import ExtractConfig, extract  # noqa: E402
from publish import table_main  # noqa: E402

WOMAN = Path(__file__).resolve().parents[1] / "data/video/WolfgangLanger_Pexels.mp4"


def run(quick: bool = False) -> list[dict[str, Any]]:
    stats = {"palms": [0, 0.0], "landmarks": [0, 0.0]}
    originals = {name: getattr(hands.HandFinder, name) for name in stats}

    def timed(name: str) -> Any:
        def call(self: Any, *a: Any) -> Any:
            t0 = time.perf_counter()
            out = originals[name](self, *a)
            stats[name][0] += 1
            stats[name][1] += time.perf_counter() - t0
            return out

        return call

    for name in stats:
        setattr(hands.HandFinder, name, timed(name))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            s = extract([WOMAN], Path(tmp) / "set", ExtractConfig(progress=False))
            total = time.perf_counter() - t0
    finally:
        for name, f in originals.items():
            setattr(hands.HandFinder, name, f)
    rows = [{"part": "extract, all", "calls": s.frames, "seconds": round(total, 2)}]
    for name, (n, sec) in stats.items():
        rows.append({"part": name, "calls": n, "seconds": round(sec, 2),
                     "ms_each": round(1000 * sec / max(n, 1), 1)})  # fmt: skip
    return rows


def main() -> None:
    table_main(__doc__, "hands-profile", run, ["part", "calls", "seconds"])


if __name__ == "__main__":
    main()
