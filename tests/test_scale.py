"""Batch work on a real local Ray cluster (2 workers): a video converted on Ray is the
single-process output frame for frame, and a face set extracted on Ray is the single-process one
row for row - also when a worker is killed mid-task (``kill -9``) and when the driver is killed
and the same command is run again (issue 14)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, MAN, MAN_NOFACE, WOMAN, train_lite
from facetwin.cluster import RayConfig
from facetwin.convert.pipeline import ConvertConfig, convert
from facetwin.extract.on_ray import extract_on_ray
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.faceset import FaceSet
from facetwin.media.video import copy_head, decode_frames, frame_index, iter_frames

pytestmark = pytest.mark.slow
SEGMENT = 25  # frames per segment: the 4 s clip (98 frames) makes four Ray tasks


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return copy_head(WOMAN, tmp_path_factory.mktemp("clip") / "woman_4s.mp4", 4.0)


@pytest.fixture(scope="module")
def clip_faceset(clip, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fs") / "woman_4s"
    extract([clip], out, ExtractConfig(progress=False))
    return out


@pytest.fixture(scope="module")
def model(faceset_woman, faceset_man, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "lite"
    train_lite(faceset_woman, faceset_man, out, 10)
    return out


def settings(faceset: Path, **kw) -> ConvertConfig:  # type: ignore[no-untyped-def]
    return ConvertConfig(faceset=str(faceset), segment_frames=SEGMENT, progress=False, **kw)


@pytest.fixture(scope="module")
def single(clip, clip_faceset, model, tmp_path_factory) -> list[np.ndarray]:
    """The single-process conversion's frames: what every Ray run must reproduce."""
    out = tmp_path_factory.mktemp("single") / "out.mp4"
    convert(clip, model, out, settings(clip_faceset))
    return frames(out)


def frames(path: Path) -> list[np.ndarray]:
    return [f for _, f in iter_frames(path)]


def assert_same_video(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want) == 98
    # the same frames through the same encoder settings and segment cuts: identical pixels
    # (a torch thread count that rounds one sigmoid differently may move a pixel by a level)
    worst = max(int(np.abs(a.astype(np.int16) - b).max()) for a, b in zip(got, want))
    assert worst <= 2, f"a frame differs from the single-process run by {worst} levels"


def ray_tasks(name: str = "render_segment") -> list[int]:
    """PIDs of Ray workers running a task of ``name`` (Ray titles them ``ray::<name>``)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(f"ray::{name}".encode()):
                pids.append(int(d.name))
    return pids


def test_ray_output_equals_the_single_process_one(clip, clip_faceset, model, single, tmp_path):
    out = tmp_path / "ray.mp4"
    summary = convert(clip, model, out, settings(clip_faceset, ray="local", ray_workers=2))
    assert summary.frames == 98 and summary.frames_swapped == 98
    assert summary.audio == "copy"
    # the workers' time is in the summary, split by stage
    assert summary.timings["workers_model"] > 0 and summary.timings["workers_encode"] > 0
    assert_same_video(frames(out), single)
    assert not out.with_name(out.name + ".parts").exists()


class Killer(threading.Thread):
    """Kills (SIGKILL) the first Ray worker seen running a task of ``name``, ``delay`` seconds
    into it."""

    def __init__(self, name: str, delay: float) -> None:
        super().__init__()
        self.name_, self.delay = name, delay
        self.killed: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and not self.killed:
            pids = ray_tasks(self.name_)
            if pids:
                time.sleep(self.delay)
                os.kill(pids[0], signal.SIGKILL)
                self.killed.append(pids[0])
            time.sleep(0.02)

    def __enter__(self) -> Killer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()


def test_a_worker_killed_mid_task_is_retried(clip, clip_faceset, model, single, tmp_path):
    out = tmp_path / "ray.mp4"
    # inside the task: model loaded, frames being encoded
    with Killer("render_segment", 0.3) as killer:
        convert(clip, model, out, settings(clip_faceset, ray="local", ray_workers=2))
    assert killer.killed, "no segment task was seen running"
    assert_same_video(frames(out), single)


def test_the_driver_killed_then_the_same_command_resumes(
    clip, clip_faceset, model, single, tmp_path
):
    out = tmp_path / "ray.mp4"
    parts = out.with_name(out.name + ".parts")
    cmd = [sys.executable, "-m", "facetwin.cli", "convert", str(clip), "-m", str(model)]
    cmd += ["-o", str(out), "--faceset", str(clip_faceset), "--segment-frames", str(SEGMENT)]
    cmd += ["--ray", "--ray-workers", "2", "-q"]
    # its own process group: the local cluster Ray starts for it (GCS, raylet) is in it too
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(parts.glob("seg_*.mp4")):
        assert proc.poll() is None, "the conversion ended before it could be killed"
        assert time.monotonic() < deadline, "no segment was finished in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(parts.glob("seg_*.mp4")))
    assert 1 <= finished < 4 and not out.exists()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    resumed = int(rerun.stdout.split("resumed segments: ")[1].split()[0])
    assert resumed >= finished  # kept, not redone (workers may have finished more meanwhile)
    assert_same_video(frames(out), single)


@pytest.mark.parametrize("video", [WOMAN, MAN_NOFACE], ids=["mp4", "mov"])
def test_a_segment_decoded_from_its_keyframe_is_the_same(video):
    """A segment task seeks to the keyframe before its first frame instead of decoding the
    video from the start: same frames, same indices, same pixels, fewer frames decoded."""
    index = frame_index(video)
    assert index is not None and len(index.keyframes) > 3  # keyframes every ~30-72 frames
    linear = {f.index: f.image for f in decode_frames(video)}
    assert len(index.pts) == len(linear)
    for start in (1, index.keyframes[1], index.keyframes[2] + 7, len(linear) - 3):
        got = [f for f, _ in zip(decode_frames(video, start, index), range(12))]
        assert [f.index for f in got] == list(range(start, min(start + 12, len(linear))))
        assert all(np.array_equal(f.image, linear[f.index]) for f in got)
    assert index.seek_pts(index.keyframes[2] + 7) == index.pts[index.keyframes[2]]
    assert index.seek_pts(1) is None  # the first keyframe is the start anyway


# -- extract -------------------------------------------------------------------------------


def extract_inputs(clip: Path) -> list[Path]:
    """Two videos and a folder of photos: three Ray tasks (the photos are one batch)."""
    return [clip, MAN, DATA / "images"]


@pytest.fixture(scope="module")
def single_faceset(clip, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "fs"
    extract(extract_inputs(clip), out, ExtractConfig(progress=False))
    return out


def assert_same_faceset(got: Path, want: Path) -> None:
    """Row for row and file for file; embeddings to float rounding (a worker computes them with
    one torch thread, the single process with two)."""
    with FaceSet.open(got) as a, FaceSet.open(want) as b:
        rows_a, rows_b = a.dump(), b.dump()
        faces_a, faces_b = a.faces(include_bridged=True), b.faces(include_bridged=True)
    assert len(rows_a) == len(rows_b) and len(faces_a) == len(faces_b) > 150
    for fa, fb in zip(faces_a, faces_b):
        assert (fa.id, fa.source_id, fa.frame, fa.face, fa.file, fa.track, fa.bridged) == (
            fb.id, fb.source_id, fb.frame, fb.face, fb.file, fb.track, fb.bridged,
        )  # fmt: skip
        assert np.array_equal(fa.landmarks, fb.landmarks)
        assert np.array_equal(fa.matrix, fb.matrix)
        if fb.embedding is not None:
            assert np.abs(fa.embedding - fb.embedding).max() < 1e-5
        if fb.file:
            assert (got / "faces" / fa.file).read_bytes() == (want / "faces" / fb.file).read_bytes()
    assert not (got / ".shards").exists()


def test_extract_on_ray_equals_the_single_process_face_set(clip, single_faceset, tmp_path):
    out = tmp_path / "fs"
    summary = extract_on_ray(
        extract_inputs(clip), out, ExtractConfig(progress=False), RayConfig(workers=2)
    )
    assert summary.sources == 2 + len(list((DATA / "images").iterdir()))
    assert_same_faceset(out, single_faceset)


def test_extract_worker_killed_mid_task_is_retried(clip, single_faceset, tmp_path):
    out = tmp_path / "fs"
    with Killer("extract_shard", 1.5) as killer:
        extract_on_ray(
            extract_inputs(clip), out, ExtractConfig(progress=False), RayConfig(workers=2)
        )
    assert killer.killed, "no extract task was seen running"
    assert_same_faceset(out, single_faceset)
