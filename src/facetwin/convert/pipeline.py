"""``facetwin convert``: swap the faces of an image, a folder of images or a video.

Per frame: the faces of the model's source identity are located (a face set's smoothed
landmarks, or detection), cut out with their alignment matrix, run through the shared encoder
and the *other* identity's decoder (a2b: faces of A are drawn by decoder B), recoloured, warped
back with the inverse matrix and blended. Everything else in the frame is left as it was.

Video runs in two passes over the input, both streamed with constant memory:

1. faces: without ``faceset=``, extract's own pipeline (detection, tracking, gap bridging,
   smoothing) writes a small face set into ``OUTPUT.parts/`` - crash-safe and resumable like any
   extraction - and its smoothed landmarks are used by frame index;
2. frames: decode, swap, label, and encode into segment files in ``OUTPUT.parts/``; the segments
   are then remuxed with the input's audio into OUTPUT and the parts removed.

An interrupted run resumes: a rerun with the same input, model and settings finds the face set
and the finished segments and continues after them.

Every output is labelled as synthetic (invisible watermark + metadata tag, see
facetwin.label) unless ``label=False``, which is logged as a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from facetwin.convert.blend import BLENDERS, BlendParams
from facetwin.convert.color import COLOR_MATCHERS
from facetwin.convert.config import (
    PARTS_SUFFIX,
    STATE_FILE,
    WORK_FACESET_SIZE,
    ConvertConfig,
    ConvertSummary,
    Outcome,
    check_output,
    image_output_path,
    input_kind,
    validate,
)
from facetwin.convert.faces import (
    FacePlan,
    check_faceset_identity,
    detect_faces,
    plan_from_records,
)
from facetwin.convert.occlusion import OcclusionConfig
from facetwin.convert.outputs import FolderJournal, FrameLabeller, job_digest, write_output_image
from facetwin.convert.swap import SwapModel, Swapper, Timer, load_swap_model
from facetwin.device import resolve_device
from facetwin.errors import InputError, ModelMismatchError, NoFaceError, OutputError, UsageError
from facetwin.faceset import FaceSet
from facetwin.label import video_metadata
from facetwin.lock import exclusive
from facetwin.media.files import atomic_write_bytes, make_folder
from facetwin.media.image import list_images, read_image, write_image
from facetwin.media.video import decode_frames, is_video_path, probe
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


# -- the converter ---------------------------------------------------------------------------


class Converter:
    """One conversion run. Use :func:`convert`."""

    def __init__(self, model: SwapModel, cfg: ConvertConfig) -> None:
        self.model = model
        self.cfg = cfg
        self.timer = Timer()
        self.swapper = Swapper(
            model=model,
            side=cfg.target_side,
            color=COLOR_MATCHERS.get(cfg.color),
            blend=BLENDERS.get(cfg.blend),
            params=BlendParams(erode=cfg.erode, feather=cfg.feather, sharpen=cfg.sharpen),
            timer=self.timer,
            source_side=cfg.source_side,
            occlusion=OcclusionConfig(enabled=cfg.occlusion),
        )
        self.labeller = FrameLabeller()
        self.faceset = FaceSet.open(cfg.faceset) if cfg.faceset else None
        self.reference = model.identity_embedding(cfg.source_side)
        if self.faceset is not None:
            other = model.identity_embedding(cfg.target_side)
            try:
                check_faceset_identity(
                    self.faceset, self.reference, other, cfg.source_side, cfg.threshold
                )
            except ModelMismatchError:
                self.faceset.close()
                raise
            if self.reference is None:
                self.reference = self.faceset.mean_embedding()
        if self.reference is None:
            log.info(
                "the model records no identity for side %s: every face is swapped", cfg.source_side
            )
        self._detector: Any = None

    def close(self) -> None:
        if self.faceset is not None:
            self.faceset.close()

    # faces ------------------------------------------------------------------------------
    @property
    def detector(self) -> Any:
        if self._detector is None:
            from facetwin.extract.detectors import create_detector

            self._detector = create_detector(self.cfg.detector, resolve_device(self.cfg.device))
        return self._detector

    def plan_from_faceset(self, fs: FaceSet, path: Path) -> FacePlan:
        """The plan for ``path`` from a face set that holds it (ModelMismatchError if not)."""
        row = fs.source(str(path.resolve())) or self.moved_source(fs, path)
        if row is None:
            raise ModelMismatchError(
                f"face set {fs.root} holds no faces of {path}; extract it into the face set "
                "or leave out the face set"
            )
        if row["status"] != "done":
            raise InputError(
                f"face set {fs.root}: the extraction of {path} is unfinished; rerun extract"
            )
        every = fs.every
        recs = fs.faces(include_bridged=True, source_id=int(row["id"]))
        return plan_from_records(
            recs, self.reference, self.cfg.threshold, self.cfg.smooth, self.cfg.scale_sigma, every
        )

    @staticmethod
    def moved_source(fs: FaceSet, path: Path) -> Any:
        """The face set's source with ``path``'s file name and frame size, when exactly one
        matches: a video extracted in one place and converted from another is the same video."""
        rows = [
            row
            for src in fs.sources()
            if Path(str(src["path"])).name == path.name
            and (row := fs.source(str(src["path"]))) is not None
        ]
        if len(rows) != 1:
            return None
        if is_video_path(path):
            info = probe(path)
            size = (info.width, info.height)
        else:
            size = read_image(path).shape[1::-1]
        if (rows[0]["width"], rows[0]["height"]) != tuple(size):
            return None
        log.info("face set %s: using its source %s for %s", fs.root, rows[0]["path"], path)
        return rows[0]

    def plan_image(self, path: Path, image: np.ndarray) -> FacePlan:
        if self.faceset is not None:
            return self.plan_from_faceset(self.faceset, path)
        with self.timer("detect"):
            return detect_faces(
                image, self.detector, self.cfg.max_detect_side, self.reference, self.cfg.threshold
            )

    def detect_video(self, path: Path, parts: Path) -> FacePlan:
        """Run extract on the video into ``parts/faceset`` (resumable) and plan from it."""
        from facetwin.extract.pipeline import ExtractConfig, extract

        work = parts / "faceset"
        with self.timer("detect"):
            try:
                extract(
                    [path],
                    work,
                    ExtractConfig(
                        detector=self.cfg.detector,
                        size=WORK_FACESET_SIZE,
                        device=self.cfg.device,
                        redetect_every=self.cfg.redetect_every,
                        max_detect_side=self.cfg.max_detect_side,
                        smooth=self.cfg.smoothing,
                        progress=self.cfg.progress,
                    ),
                )
            except NoFaceError:
                return FacePlan()  # the caller words the error
        with FaceSet.open(work) as fs:
            return self.plan_from_faceset(fs, path)

    def no_face_error(self, what: str, plan: FacePlan) -> NoFaceError:
        if plan.found == 0:
            return NoFaceError(f"{what}: no face found")
        closest = "" if plan.closest is None else f", closest identity distance {plan.closest:.2f}"
        return NoFaceError(
            f"{what}: {plan.found} faces found, but none of the model's side "
            f"{self.cfg.source_side} person (threshold {self.cfg.threshold}{closest})"
        )

    # frames -----------------------------------------------------------------------------
    def render(self, frame: np.ndarray, faces: list[np.ndarray], label: bool) -> np.ndarray:
        """The output frame: swapped, optionally beside the original, optionally watermarked."""
        out = self.swapper.swap_frame(frame, faces)
        if self.cfg.side_by_side:
            out = np.hstack([frame, out])
        if label:
            with self.timer("label"):
                out = self.labeller(out)
        return out

    def save_image(self, path: Path, image: np.ndarray) -> None:
        with self.timer("encode"):
            write_output_image(path, image, self.model.model_id, self.cfg)

    # inputs -----------------------------------------------------------------------------
    def image(self, path: Path, output: Path) -> Outcome:
        if image_output_path(output) != output:
            raise UsageError(f"{output}: write a converted image as .png or .jpg")
        with self.timer("decode"):
            img = read_image(path)
        plan = self.plan_image(path, img)
        if not plan.swapped:
            raise self.no_face_error(str(path), plan)
        self.save_image(output, self.render(img, plan.faces(0), False))
        return Outcome(1, 1, plan.swapped, plan.other)

    def folder(self, folder: Path, output: Path) -> Outcome:
        images = list_images(folder)
        if not images:
            raise InputError(f"{folder}: folder holds no images")
        if output.is_file():
            raise UsageError(f"{output}: the output of a folder must be a folder")
        output.mkdir(parents=True, exist_ok=True)
        result = Outcome(0, 0, 0, 0)
        found = 0
        journal = FolderJournal(output, job_digest(self.job(None)))
        for path in tqdm(images, desc="convert", unit="img", disable=not self.cfg.progress):
            entry = journal.done(path)
            if entry is not None:  # converted by an earlier, interrupted run with these settings
                result.resumed_segments += 1
            else:
                out = output / image_output_path(Path(path.name))
                entry = self.folder_image(path, out)
                if entry is None:
                    result.skipped.append(str(path))
                    continue
                journal.add(path, out, entry)
            result.frames += 1
            result.frames_swapped += int(entry["swapped"] > 0)
            result.faces_swapped += entry["swapped"]
            result.faces_other += entry["other"]
            found += entry["found"]
        if result.resumed_segments:
            log.info(
                "resumed %s: %d images were already converted", output, result.resumed_segments
            )
        if not result.faces_swapped:
            raise self.no_face_error(str(folder), FacePlan(found=found, other=result.faces_other))
        if result.frames > result.frames_swapped:
            log.info(
                "%d images had no face to swap and were copied unchanged",
                result.frames - result.frames_swapped,
            )
        return result

    def folder_image(self, path: Path, out: Path) -> dict[str, int] | None:
        """Convert one image of a folder into ``out`` (copied unchanged when no face is swapped);
        its face counts, or None when it is unreadable."""
        try:
            with self.timer("decode"):
                img = read_image(path)
        except InputError:
            log.warning("skipping unreadable image %s", path)
            return None
        plan = self.plan_image(path, img)
        if plan.swapped:
            self.save_image(out, self.render(img, plan.faces(0), False))
        else:
            with self.timer("encode"):  # nothing to swap: the image is copied unchanged
                if out.suffix == path.suffix:
                    atomic_write_bytes(out, path.read_bytes())
                else:
                    write_image(out, img, self.cfg.jpeg_quality)
        return {"swapped": plan.swapped, "other": plan.other, "found": plan.found}

    def preview(self, path: Path, kind: str, output: Path) -> Outcome:
        """Convert frame ``cfg.preview`` only (image ``preview`` of a folder) into an image."""
        n = int(self.cfg.preview or 0)
        if kind == "video":
            frame = next(iter(decode_frames(path, n)), None)
            if frame is None:
                raise UsageError(f"preview frame {n} is past the end of {path}")
            img, source, index = frame.image, path, n
        else:
            images = [path] if kind == "image" else list_images(path)
            if not 0 <= n < len(images):
                raise UsageError(f"preview {n} is out of range: {path} holds {len(images)} images")
            img, source, index = read_image(images[n]), images[n], 0
        if self.faceset is not None:
            plan = self.plan_from_faceset(self.faceset, source)
        else:
            with self.timer("detect"):
                plan = detect_faces(
                    img, self.detector, self.cfg.max_detect_side, self.reference, self.cfg.threshold
                )
            index = 0
        faces = plan.faces(index)
        if not faces:
            raise self.no_face_error(f"{path} frame {n}", plan)
        self.save_image(output, self.render(img, faces, False))
        return Outcome(1, 1, len(faces), plan.other)

    def video(self, path: Path, output: Path) -> Outcome:
        container_format(output)
        info = probe(path)
        check_complete(path, info.frame_count)
        parts = output.with_name(output.name + PARTS_SUFFIX)
        plan = self.plan_from_faceset(self.faceset, path) if self.faceset else None
        self.prepare_parts(parts, path)
        if plan is None:
            plan = self.detect_video(path, parts)
        if not plan.swapped:
            shutil.rmtree(parts, ignore_errors=True)  # nothing to resume
            raise self.no_face_error(str(path), plan)
        timing = stream_timing(path)
        width = timing.width * (2 if self.cfg.side_by_side else 1)
        settings = EncodeSettings(codec=self.cfg.codec, crf=self.cfg.crf, preset=self.cfg.preset)
        writer = SegmentWriter(
            parts, timing, settings, self.cfg.segment_frames, (width, timing.height)
        )
        resumed = len(writer.finished)
        if resumed:
            log.info("resuming %s: %d finished segments found", output, resumed)
        frames = 0
        with tqdm(
            total=info.frame_count,
            desc="convert",
            unit="frame",
            disable=not self.cfg.progress,
            smoothing=0.1,
        ) as bar:
            try:
                for f in _timed(decode_frames(path), self.timer, "decode"):
                    frames = f.index + 1
                    if not writer.is_finished(f.index):
                        img = self.render(f.image, plan.faces(f.index), self.cfg.label)
                        with self.timer("encode"):
                            writer.write(f.index, img, f.pts)
                    bar.update(1)
                with self.timer("encode"):
                    writer.close()
            except BaseException:
                writer.abort()
                raise
        with self.timer("encode"):
            written, audio = join_segments(
                list(writer.finished.values()),
                output,
                path if info.has_audio else None,
                self.video_metadata(),
            )
        if written != frames:
            raise OutputError(
                f"{output}: the segments in {parts} hold {written} frames, the input {frames}; "
                f"delete {parts} and convert again"
            )
        shutil.rmtree(parts, ignore_errors=True)
        swapped = sum(1 for f in plan.frames if f < frames)
        return Outcome(frames, swapped, plan.swapped, plan.other, audio, resumed)

    def video_metadata(self) -> dict[str, str]:
        if not self.cfg.label:
            return {}

        return video_metadata(self.model.model_id)

    def job(self, path: Path | None) -> dict[str, Any]:
        """What makes a conversion the same job: the input (as stored), model and settings."""
        job: dict[str, Any] = {
            "model_id": self.model.model_id,
            "config": {
                k: v for k, v in asdict(self.cfg).items() if k not in ("progress", "device")
            },
        }
        if path is not None:
            stat = path.stat()
            job.update(input=str(path.resolve()), bytes=stat.st_size, mtime_ns=stat.st_mtime_ns)
        return job

    def prepare_parts(self, parts: Path, path: Path) -> None:
        """Create ``parts``, or keep it for resuming when it was made by the same job."""
        job = self.job(path)
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


def _convert_locked(conv: Converter, src: Path, dst: Path, kind: str) -> Outcome:
    """The conversion itself, once the output is ours. A video run that fails on its input
    (damaged, or no face) removes the ``.parts`` folder it made: there is nothing to resume."""
    if conv.cfg.preview is not None:
        return conv.preview(src, kind, dst)
    if kind == "image":
        return conv.image(src, dst)
    if kind == "folder":
        return conv.folder(src, dst)
    parts = dst.with_name(dst.name + PARTS_SUFFIX)
    had_parts = parts.exists()
    try:
        return conv.video(src, dst)
    except (InputError, NoFaceError):
        if not had_parts:
            shutil.rmtree(parts, ignore_errors=True)
        raise


def convert(
    input: str | Path,
    model_dir: str | Path | SwapModel | tuple[Any, dict[str, Any]],
    output: str | Path,
    cfg: ConvertConfig | None = None,
) -> ConvertSummary:
    """Swap the faces of ``input`` (image, folder of images or video) into ``output``.

    ``model_dir`` is a trained model folder (or snapshot), or an already loaded model:
    ``(module, meta)`` or a :class:`SwapModel`.
    """
    cfg = cfg or ConvertConfig()
    validate(cfg)
    src, dst = Path(input), Path(output)
    kind = input_kind(src)
    check_output(src, dst, kind, cfg)
    if not cfg.label:
        log.warning("labelling is off: %s will NOT say that it is synthetic", dst)
    t0 = time.perf_counter()
    model = load_swap_model(model_dir, cfg.device)
    if cfg.preview is not None:
        dst = image_output_path(dst)
    conv = Converter(model, cfg)  # reads --faceset: a damaged one fails here, before any write
    try:
        make_folder(dst.parent)
        # one writer per video or folder output (its .parts folder or journal is resumable
        # state); a single image is written atomically and needs no lock
        locked = cfg.preview is None and kind in ("video", "folder")
        if locked and kind == "folder":
            make_folder(dst)  # first, so that its lock lives inside it on every run
        with exclusive(dst, f"output {dst}") if locked else contextlib.nullcontext():
            result = _convert_locked(conv, src, dst, kind)
    finally:
        conv.close()
    secs = time.perf_counter() - t0
    if cfg.preview is not None:
        kind = "preview"
    return ConvertSummary(
        input=str(src),
        output=str(dst),
        kind=kind,
        frames=result.frames,
        frames_swapped=result.frames_swapped,
        faces_swapped=result.faces_swapped,
        faces_other=result.faces_other,
        seconds=round(secs, 2),
        frames_per_second=round(result.frames / secs, 2) if secs else 0.0,
        timings=conv.timer.rounded(),
        audio=result.audio,
        resumed_segments=result.resumed_segments,
        labelled=cfg.label,
        skipped=result.skipped,
    )


__all__ = ["ConvertConfig", "ConvertSummary", "Converter", "convert"]
