"""Extraction speed, recall and peak memory on the bundled 640x360 clips, per detector.

Each configuration runs in its own process so that its peak memory (ru_maxrss) is its own.
Frames/s counts processed frames over the whole run (model loading included).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = {
    "woman": ROOT / "data/video/WolfgangLanger_Pexels.mp4",
    "man": ROOT / "data/video/single_face.mp4",
}

CHILD = r"""
import json, resource, sys
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.faceset import FaceSet
clip, out, detector, every = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = extract([clip], out, ExtractConfig(detector=detector, every=every, progress=False))
with FaceSet.open(out) as fs:
    c = fs.counts()
print(json.dumps({"fps": s.frames_per_second, "seconds": s.seconds, "frames": c["frames"],
                  "recall": c["frames_with_faces"] / max(c["frames"], 1),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _one(clip: Path, detector: str, every: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(clip), f"{tmp}/fs", detector, str(every)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(quick: bool = False) -> list[dict]:
    configs = [("dlib-hog", 1), ("mtcnn", 1 if not quick else 4), ("dlib-cnn", 24)]
    rows = []
    for detector, every in configs:
        for name, clip in CLIPS.items():
            if quick and name == "woman":
                continue
            r = _one(clip, detector, every)
            rows.append(
                {
                    "bench": "extract",
                    "detector": detector,
                    "clip": name,
                    "every": every,
                    **{k: round(v, 3) for k, v in r.items()},
                }
            )
    return rows


def main() -> None:
    rows = run(quick="--quick" in sys.argv)
    print(
        f"{'detector':10s} {'clip':6s} {'every':>5s} {'frames':>6s} {'fps':>7s} "
        f"{'recall':>7s} {'peak MB':>8s}"
    )
    for r in rows:
        print(
            f"{r['detector']:10s} {r['clip']:6s} {r['every']:5d} {r['frames']:6d} {r['fps']:7.1f} "
            f"{r['recall']:7.3f} {r['peak_mb']:8.0f}"
        )
    out = ROOT / "bench_out" / "extract.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
