"""The demo's held-out pose error measured by both head-pose estimators (issue 16: is the pose
error the swap's or the estimator's?).

Runs ``facetwin eval``'s attributes on the held-out frames of a finished ``make demo`` (its
``demo_out/``) twice: with the rigid landmark fit (``--pose landmarks``) and with ``--pose
dlib-mesh-pose`` (MediaPipe's mesh: within 5 degrees on the known-yaw stills where the landmark
fit is 7 off at 45; docs/landmarks.md).

    python benchmarks/pose_compare.py DEMO_OUT [--publish]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facetwin.eval import EvalConfig, evaluate
from publish import PUBLISH_HELP, write_result

KEYS = ("faces", "pose_error_mean", "pose_error_centred_mean", "yaw_error_mean",
        "pitch_error_mean", "roll_error_mean", "pose_offset")  # fmt: skip


def run(demo_out: Path) -> list[dict]:
    rows = []
    for name in ("woman_as_man", "man_as_woman"):
        done = json.loads((demo_out / f"report_{name}" / "metrics.json").read_text())
        c = done["config"]
        for pose in ("landmarks", "dlib-mesh-pose"):
            cfg = EvalConfig(
                start_frame=c["start_frame"], direction=c["direction"], metrics=("attributes",),
                pose=pose, progress=False,
            )  # fmt: skip
            m = evaluate(done["original"], demo_out / f"{name}.mp4", cfg=cfg)
            rows.append({"swap": name, "pose": pose, **{k: m["attributes"][k] for k in KEYS}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("demo_out", type=Path)
    ap.add_argument("--publish", action="store_true", help=PUBLISH_HELP)
    a = ap.parse_args()
    rows = run(a.demo_out)
    for r in rows:
        print("  ".join(f"{k}={v}" for k, v in r.items()))
    write_result("pose-estimators-demo", rows, a.publish)


if __name__ == "__main__":
    main()
