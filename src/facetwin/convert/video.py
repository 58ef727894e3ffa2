"""Video: the resumable two-pass conversion, both passes streamed with constant memory.

1. faces: the face set's plan, or extract's own pipeline run into ``OUTPUT.parts/faceset``
   (crash-safe and resumable like any extraction);
2. frames: decode, swap, label and encode into segment files in ``OUTPUT.parts/``; the segments
   are then remuxed with the input's audio into OUTPUT and the parts removed.

Everything that makes a rerun resume lives here: ``OUTPUT.parts/state.json`` names the job
(input, model and settings, :meth:`Converter.job`), and a parts folder left by another job is
started over rather than mixed into this one.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from facetwin.convert.config import PARTS_SUFFIX, STATE_FILE, WORK_FACESET_SIZE, Outcome
from facetwin.convert.converter import Converter
from facetwin.convert.faces import FacePlan
from facetwin.convert.outputs import job_digest
from facetwin.convert.swap import Timer
from facetwin.errors import NoFaceError, OutputError
from facetwin.extract.landmarkers import PLAIN_LANDMARKER
from facetwin.faceset import FaceSet
from facetwin.label import video_metadata
from facetwin.media.files import atomic_write_bytes
from facetwin.media.video import decode_frames, probe, read_ahead
from facetwin.media.video_writer import (
    EncodeSettings,
    SegmentWriter,
    check_complete,
    container_format,
    join_segments,
    stream_timing,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


def parts_folder(output: Path) -> Path:
    """Where a video conversion keeps what it resumes from: ``OUTPUT.parts``."""
    return output.with_name(output.name + PARTS_SUFFIX)


def _timed(items: Iterable[T], timer: Timer, stage: str) -> Iterator[T]:
    """Iterate ``items``, adding the time spent producing each to ``stage``."""
    it = iter(items)
    while True:
        with timer(stage):
            try:
                item = next(it)
            except StopIteration:
                return
        yield item


#: Pass 2, the frames: encode into ``writer``'s segments every frame no finished segment holds;
#: the number of frames of the video. In this process by default (:func:`write_segments`), or
#: as Ray tasks (``on_ray.py``).
FramesPass = Callable[[Converter, Path, FacePlan, SegmentWriter, "int | None"], int]


def convert_video(
    conv: Converter, path: Path, output: Path, frames_pass: FramesPass | None = None
) -> Outcome:
    """Convert the video ``path`` into ``output``, resuming from ``OUTPUT.parts`` when a run of
    the same job left it; the parts are removed once the output is complete."""
    container_format(output)
    info = probe(path)
    check_complete(path, info.frame_count)
    parts = parts_folder(output)
    plan = video_plan(conv, path, parts)
    writer = open_writer(conv, path, parts)
    resumed = len(writer.finished)
    if resumed:
        log.info("resuming %s: %d finished segments found", output, resumed)
    frames = (frames_pass or write_segments)(conv, path, plan, writer, info.frame_count)
    audio = join_parts(conv, path, output, writer, frames, info.has_audio)
    shutil.rmtree(parts, ignore_errors=True)
    swapped = sum(1 for f in plan.frames if f < frames)
    return Outcome(frames, swapped, plan.swapped, plan.other, audio, resumed)


# -- pass 1: the faces -------------------------------------------------------------------------


def video_plan(conv: Converter, path: Path, parts: Path) -> FacePlan:
    """The faces to swap in every frame, from the face set or by extracting them into
    ``parts``; NoFaceError (and no parts left) when there are none."""
    plan = conv.plan_from_faceset(conv.faceset, path) if conv.faceset else None
    prepare_parts(conv, parts, path)
    if plan is None:
        plan = detect_video(conv, path, parts)
    if not plan.swapped:
        shutil.rmtree(parts, ignore_errors=True)  # nothing to resume
        raise conv.no_face_error(str(path), plan)
    return plan


def detect_video(conv: Converter, path: Path, parts: Path) -> FacePlan:
    """Run extract on the video into ``parts/faceset`` (resumable) and plan from it."""
    from facetwin.extract.pipeline import ExtractConfig, extract

    work = parts / "faceset"
    cfg = conv.cfg
    with conv.timer("detect"):
        try:
            extract(
                [path],
                work,
                ExtractConfig(
                    detector=cfg.detector,
                    # convert uses no head pose: the plain predictor, without the mesh's cost
                    landmarker=PLAIN_LANDMARKER,
                    plugin_settings={cfg.detector: cfg.settings_of(cfg.detector)},
                    size=WORK_FACESET_SIZE,
                    device=cfg.device,
                    redetect_every=cfg.redetect_every,
                    max_detect_side=cfg.max_detect_side,
                    smooth=cfg.smoothing,
                    progress=cfg.progress,
                ),
            )
        except NoFaceError:
            return FacePlan()  # the caller words the error
    with FaceSet.open(work) as fs:
        return conv.plan_from_faceset(fs, path)


def prepare_parts(conv: Converter, parts: Path, path: Path) -> None:
    """Create ``parts``, or keep it for resuming when it was made by the same job."""
    job = conv.job(path)
    key = job_digest(job)
    state = parts / STATE_FILE
    try:
        if parts.exists():
            try:
                doc = json.loads(state.read_text())
            except (OSError, ValueError):
                doc = None
            if isinstance(doc, dict) and doc.get("key") == key:
                return
            log.warning("%s was left by a conversion with other settings: starting over", parts)
            shutil.rmtree(parts)
        parts.mkdir(parents=True)
        text = json.dumps({"key": key, "job": job}, indent=1, default=str)
        atomic_write_bytes(state, text.encode())
    except OSError as e:
        raise OutputError(f"cannot create {parts}: {e.strerror or e}") from None


# -- pass 2: the frames ------------------------------------------------------------------------


def open_writer(conv: Converter, path: Path, parts: Path) -> SegmentWriter:
    """The segment writer for the output: the input's timing, twice its width side by side;
    the segments a previous run finished are found and kept."""
    timing = stream_timing(path)
    width = timing.width * (2 if conv.cfg.side_by_side else 1)
    settings = EncodeSettings(codec=conv.cfg.codec, crf=conv.cfg.crf, preset=conv.cfg.preset)
    return SegmentWriter(parts, timing, settings, conv.cfg.segment_frames, (width, timing.height))


def write_segments(
    conv: Converter, path: Path, plan: FacePlan, writer: SegmentWriter, total: int | None
) -> int:
    """Decode every frame, render and encode those no finished segment holds; the number of
    frames decoded. Any failure (Ctrl-C included) aborts the unfinished segment first."""
    frames = 0
    with tqdm(
        total=total, desc="convert", unit="frame", disable=not conv.cfg.progress, smoothing=0.1
    ) as bar:
        try:
            for f in _timed(read_ahead(decode_frames(path)), conv.timer, "decode"):
                frames = f.index + 1
                if not writer.is_finished(f.index):
                    img = conv.render(f.image, plan.faces(f.index), conv.cfg.label, f.index)
                    with conv.timer("encode"):
                        writer.write(f.index, img, f.pts)
                bar.update(1)
            with conv.timer("encode"):
                writer.close()
        except BaseException:
            writer.abort()
            raise
    return frames


def join_parts(
    conv: Converter, path: Path, output: Path, writer: SegmentWriter, frames: int, audio: bool
) -> str:
    """Remux the finished segments with the input's audio (when it has any) into ``output``;
    how the audio went. OutputError when the segments do not hold every input frame."""
    with conv.timer("encode"):
        written, how = join_segments(
            list(writer.finished.values()),
            output,
            path if audio else None,
            video_metadata(conv.model.model_id) if conv.cfg.label else {},
        )
    if written != frames:
        parts = parts_folder(output)
        raise OutputError(
            f"{output}: the segments in {parts} hold {written} frames, the input {frames}; "
            f"delete {parts} and convert again"
        )
    return how


__all__ = ["convert_video", "parts_folder", "prepare_parts"]
