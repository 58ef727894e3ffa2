"""Video conversion on a Ray cluster: the frames pass split into segment tasks.

The single-process video run (``video.py``) already cuts its output into independent segment
files of ``segment_frames`` frames, each encoded on its own and renamed into place when
complete; the finished ones are what a rerun resumes from. That makes the segments the natural
task: a worker decodes the input from the segment's first frame, swaps and encodes exactly that
segment with its own :class:`SegmentWriter`, and the driver - the only process that writes the
output - joins the finished segments with the audio as before. So:

* the output is the single-process one, frame for frame (same faces plan, same per-frame swap,
  same segment boundaries and encoder settings);
* a worker killed mid-task leaves only a ``.tmp-`` file, which the retried task overwrites;
  a finished segment is never written twice;
* the driver killed: the same command finds the finished segments in ``OUTPUT.parts`` and
  submits only the rest (a single-process rerun would resume from them too).

The faces plan (pass 1) runs on the driver: from a face set it is a read, and detection for a
video is extract's own resumable run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from facetwin.cluster import TASK_RETRIES, RayConfig, connect, wait_all
from facetwin.convert.config import ConvertConfig, Outcome
from facetwin.convert.converter import Converter
from facetwin.convert.faces import FacePlan
from facetwin.convert.swap import load_swap_model
from facetwin.convert.video import convert_video, open_writer
from facetwin.media.video import FrameIndex, decode_frames, frame_index
from facetwin.media.video_segments import SegmentWriter, finished_segments
from facetwin.media.video_writer import count_video_packets

log = logging.getLogger(__name__)


@dataclass
class SegmentReport:
    """What one segment task did, for the summary and for "where the time goes"."""

    start: int
    frames: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds (Timer)
    load_seconds: float = 0.0  # model load and set-up in the worker


def render_segment(
    src: str,
    parts: str,
    model_dir: str,
    cfg: ConvertConfig,
    faces: dict[int, list],
    start: int,
    stop: int,
    index: FrameIndex | None = None,
) -> SegmentReport:
    """Swap and encode frames ``[start, stop)`` of ``src`` into their segment file in ``parts``
    (a Ray task; also callable in-process). ``faces`` holds the plan's faces of those frames;
    with the video's ``index`` decoding starts at the keyframe before ``start``."""
    t0 = time.perf_counter()
    cfg = replace(cfg, faceset=None, progress=False, ray=None)  # the plan came with the task
    conv = Converter(load_swap_model(model_dir, cfg.device), cfg)
    writer = open_writer(conv, Path(src), Path(parts))
    loaded = time.perf_counter()
    frames = 0
    try:
        for f in decode_frames(src, start, index):
            if f.index >= stop:
                break
            if not writer.is_finished(f.index):
                img = conv.render(f.image, faces.get(f.index, []), cfg.label, f.index)
                with conv.timer("encode"):
                    writer.write(f.index, img, f.pts)
            frames += 1
        with conv.timer("encode"):
            writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        conv.close()
    return SegmentReport(
        start, frames, time.perf_counter() - t0, conv.timer.rounded(), round(loaded - t0, 3)
    )


def segment_ranges(frames: int, segment_frames: int, finished: set[int]) -> list[tuple[int, int]]:
    """``[start, stop)`` of every segment not yet finished, in order."""
    return [
        (s, min(s + segment_frames, frames))
        for s in range(0, frames, segment_frames)
        if s not in finished
    ]


def convert_video_on_ray(
    conv: Converter, model_dir: str | Path, path: Path, output: Path, ray_cfg: RayConfig
) -> tuple[Outcome, list[SegmentReport]]:
    """:func:`~facetwin.convert.video.convert_video`, its frames pass run as one Ray task per
    unfinished segment; the reports say where each task's time went."""
    reports: list[SegmentReport] = []

    def on_ray(
        conv: Converter, path: Path, plan: FacePlan, writer: SegmentWriter, _: int | None
    ) -> int:
        total = count_video_packets(path)  # exact, where a container's count may not be
        todo = segment_ranges(total, conv.cfg.segment_frames, set(writer.finished))
        reports.extend(
            _run_tasks(conv, str(model_dir), path, writer.folder, plan.frames, todo, ray_cfg)
        )
        writer.finished = finished_segments(writer.folder)  # the tasks' segments, for the join
        return total

    return convert_video(conv, path, output, on_ray), reports


def _run_tasks(
    conv: Converter,
    model_dir: str,
    path: Path,
    parts: Path,
    faces: dict[int, list],
    todo: list[tuple[int, int]],
    ray_cfg: RayConfig,
) -> list[SegmentReport]:
    """Submit one task per segment range and wait for all, with a progress bar of frames."""
    if not todo:
        return []
    with connect(ray_cfg) as ray:
        task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(render_segment)
        index = ray.put(frame_index(path))  # once into the object store, shared by every task
        refs = [
            task.remote(
                str(path),
                str(parts),
                model_dir,
                conv.cfg,
                {i: faces[i] for i in range(a, b) if i in faces},
                a,
                b,
                index,
            )
            for a, b in todo
        ]
        total = sum(b - a for a, b in todo)
        with tqdm(
            total=total, desc="convert (ray)", unit="frame", disable=not conv.cfg.progress
        ) as bar:
            return wait_all(ray, refs, lambda r: bar.update(r.frames))


__all__ = ["SegmentReport", "convert_video_on_ray", "render_segment", "segment_ranges"]
