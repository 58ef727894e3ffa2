"""`make bench`: run every benchmark, print one table per stage, write bench_out/*.json."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

STAGES = [
    "bench_extract",
    "bench_occluders",
    "bench_photos",
    "hands_profile",
    "read_ahead",
    "bench_hands_convert",
    "bench_identity",
    "bench_train",
    "bench_convert",
    "bench_label",
    "bench_live",
    "bench_threads",
    "bench_scale",
    "quality",
]


def main() -> None:
    quick = "--quick" in sys.argv
    out = HERE.parent / "bench_out"
    out.mkdir(exist_ok=True)
    everything = {}
    for name in STAGES:
        if not (HERE / f"{name}.py").exists():
            continue
        mod = importlib.import_module(name)
        print(f"\n== {name} ==", flush=True)
        rows = mod.run(quick=quick)
        everything[name] = rows
        if rows:
            keys = list(dict.fromkeys(k for r in rows for k in r))
            print("  ".join(f"{k:>12s}" for k in keys))
            for r in rows:
                print(
                    "  ".join(
                        f"{str(r.get(k, '')):>12s}"[: max(12, len(str(r.get(k, ""))))] for k in keys
                    )
                )
        (out / f"{name.removeprefix('bench_')}.json").write_text(json.dumps(rows, indent=2))
    (out / "all.json").write_text(json.dumps(everything, indent=2))
    print(f"\nJSON in {out}/")


if __name__ == "__main__":
    main()
