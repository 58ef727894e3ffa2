"""How far ``dlib-mesh-pose-fast``'s head pose lies from the every-frame mesh's
(``dlib-mesh-pose``) on the bundled clips, how often it runs the mesh, and what each costs a
face (bench_extract.py's "video-pose" rows, docs/landmarks.md).

Its constants (landmarkers/_pose_track.py: MESH_EVERY, MAX_TURN, GAIN) were chosen on the
first half of the woman's clip (frames 0-235); her second half and the man's clip are held out,
so the rows report each part apart. Every frame is detected in full (dlib-hog) and each face
given to the three landmarkers in frame order, as extract gives them (the fast one told the
face's track and frame, as extract tells it); each call's CPU time is
summed (``ms_per_face``: over the faces after the first frame; ``dlib`` includes the rigid
pose extract computes for it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHOSEN_ON = 236  # the woman's frames below this chose the constants

CHILD = r"""
import json, sys, time
import numpy as np
from facetwin.extract.detectors import create_detector
from facetwin.extract.landmarkers import FaceAt, create_landmarker
from facetwin.face.pose import head_pose
from facetwin.media.video import iter_frames
clip, split = sys.argv[1], int(sys.argv[2])
det = create_detector("dlib-hog")
dlib, full = create_landmarker("dlib"), create_landmarker("dlib-mesh-pose")
fast = create_landmarker("dlib-mesh-pose-fast")
def plain(f, box):
    fit = dlib.fit(f, box)
    return head_pose(fit.points, f.shape[:2])  # what extract adds for a landmarker without pose
seconds = {"dlib": 0.0, "dlib-mesh-pose": 0.0, "dlib-mesh-pose-fast": 0.0}
frames, poses, timed = [], {"full": [], "fast": []}, 0
for i, f in iter_frames(clip):
    if i == 1:  # the first frame's calls load and allocate: not timed
        seconds = dict.fromkeys(seconds, 0.0)
        timed = len(frames)
    for k, d in enumerate(det.detect(f)):
        # as extract calls it: the face's track (one face a frame on these clips) and frame
        tracked = lambda f, box, at=FaceAt(0, k, i): fast.fit(f, box, at)
        calls = [("dlib", plain), ("dlib-mesh-pose", full.fit), ("dlib-mesh-pose-fast", tracked)]
        # CPU time (another job's load does not count) and the first to touch the frame after
        # the detector taking turns
        for name, call in calls[i % 3:] + calls[:i % 3]:
            t0 = time.process_time()
            out = call(f, d.box)
            seconds[name] += time.process_time() - t0
            if name != "dlib":
                poses["full" if name == "dlib-mesh-pose" else "fast"].append(out.pose)
        frames.append(i)
idx, err = np.array(frames), np.abs(np.array(poses["fast"]) - np.array(poses["full"]))
rows = []
parts = [("all", idx >= 0)]
if split <= idx.max():
    parts += [(f"0-{split - 1}", idx < split), (f"{split}-", idx >= split)]
for part, sel in parts:
    e = err[sel]
    row = {"frames": part, "faces": int(sel.sum())}
    for k, a in enumerate(("yaw", "pitch", "roll")):
        row[f"{a}_mean"] = round(float(e[:, k].mean()), 2)
        row[f"{a}_max"] = round(float(e[:, k].max()), 2)
    rows.append(row)
rows[0]["mesh_share"] = round(fast.tracker.mesh_runs / fast.tracker.calls, 3)
rows[0]["ms_per_face"] = {k: round(1000 * v / (len(idx) - timed), 2) for k, v in seconds.items()}
print(json.dumps(rows))
"""


def video_pose_rows(clips: dict[str, Path]) -> list[dict]:
    """One row per clip and part (all frames, then the chosen-on and held-out parts)."""
    rows = []
    for name, clip in clips.items():
        split = CHOSEN_ON if name == "woman" else 10**9
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(clip), str(split)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for r in json.loads(out.splitlines()[-1]):
            held_out = name != "woman" or r["frames"] == f"{CHOSEN_ON}-"
            rows.append({"bench": "video-pose", "clip": name, "held_out": held_out, **r})
    return rows


def print_video_pose(rows: list[dict]) -> None:
    """The rows as a table on stdout."""
    print(
        "\ndlib-mesh-pose-fast against every-frame mesh, |difference| in degrees"
        f"\n{'clip':8s} {'frames':8s} {'held out':8s} {'faces':>5s}  yaw mean/max  "
        "pitch mean/max  roll mean/max  mesh share"
    )
    for r in rows:
        if r["bench"] != "video-pose":
            continue
        angles = "  ".join(
            f"{r[a + '_mean']:5.2f}/{r[a + '_max']:5.2f}" for a in ("yaw", "pitch", "roll")
        )
        share = f"{r['mesh_share']:.3f} {r['ms_per_face']}" if "mesh_share" in r else ""
        print(
            f"{r['clip']:8s} {r['frames']:8s} {r['held_out']!s:8s} {r['faces']:5d}  "
            f"{angles}  {share}"
        )
