"""What decoding one frame ahead in a thread (``media.video.read_ahead``) buys extract and convert
on the woman's 640x360 clip (issue 16's 60 frames/s goal): each case with and without it, taking
turns, so that a change of the machine's load falls on both.

Rows: extract with the hand search off and on its default schedule, and convert from a ready
face set (``lite``, fresh weights: a network's speed does not depend on its training). Each row
gives the median frames/s of the turns and the median of the per-turn ratios on/off.

    python benchmarks/read_ahead.py [--publish]   # benchmarks/results/read-ahead-cpu.json
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import facetwin.convert.video as convert_video  # noqa: E402
import facetwin.extract.pipeline as extract_pipeline  # noqa: E402
from bench_convert import model  # noqa: E402
from facetwin.convert import ConvertConfig, convert  # noqa: E402
from facetwin.extract.pipeline import ExtractConfig, extract  # noqa: E402
from facetwin.media.video import read_ahead  # noqa: E402
from publish import table_main  # noqa: E402

WOMAN = Path(__file__).resolve().parents[1] / "data/video/WolfgangLanger_Pexels.mp4"
MODULES = (extract_pipeline, convert_video)


def _in_line(items: Any, depth: int = 0) -> Iterator[Any]:
    """read_ahead's stand-in for the "off" turns: the same items, decoded in the caller."""
    return iter(items)


def _turn(ahead: bool, case: Callable[[Path], float], work: Path) -> float:
    for m in MODULES:
        m.read_ahead = read_ahead if ahead else _in_line  # type: ignore[attr-defined]
    try:
        return case(work)
    finally:
        for m in MODULES:
            m.read_ahead = read_ahead  # type: ignore[attr-defined]


def run(quick: bool = False, reps: int = 3) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        extract([WOMAN], work / "set", ExtractConfig(progress=False, hands_every=0))
        net = model("lite")

        def extract_fps(hands: int) -> Callable[[Path], float]:
            def case(w: Path) -> float:
                out = w / f"x{len(list(w.iterdir()))}"
                cfg = ExtractConfig(progress=False, hands_every=hands)
                return float(extract([WOMAN], out, cfg).frames_per_second)

            return case

        def convert_fps(w: Path) -> float:
            cfg = ConvertConfig(progress=False, faceset=str(w / "set"))
            out = w / f"c{len(list(w.iterdir()))}.mp4"
            return float(convert(WOMAN, net, out, cfg).frames_per_second)

        cases = {
            "extract, hand search off": extract_fps(0),
            "extract, hand search every 8": extract_fps(8),
            "convert from a face set (lite)": convert_fps,
        }
        for name, case in cases.items():
            fps: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(1 if quick else reps):
                for ahead in (False, True):
                    fps[ahead].append(_turn(ahead, case, work))
            ratios = [on / off for on, off in zip(fps[True], fps[False])]
            rows.append({
                "case": name,
                "fps_off": round(float(np.median(fps[False])), 1),
                "fps_on": round(float(np.median(fps[True])), 1),
                "ratio_on_off": round(float(np.median(ratios)), 3),
                "fps_off_runs": [round(f, 1) for f in fps[False]],
                "fps_on_runs": [round(f, 1) for f in fps[True]],
            })  # fmt: skip
    return rows


def main() -> None:
    table_main(__doc__, "read-ahead", run, ["case", "fps_off", "fps_on", "ratio_on_off"])


if __name__ == "__main__":
    main()
