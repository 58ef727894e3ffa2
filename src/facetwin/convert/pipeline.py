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

Every output is labelled as synthetic (invisible watermark + metadata tag, see facetwin.label) unless
``label=False``, which is logged as a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from facetwin.convert.blend import BLENDERS, BlendParams
from facetwin.convert.color import COLOR_MATCHERS
from facetwin.convert.faces import (
    FacePlan,
    check_faceset_identity,
    detect_faces,
    plan_from_records,
)
from facetwin.convert.occlusion import OcclusionConfig
from facetwin.convert.swap import SwapModel, Swapper, Timer, load_swap_model
from facetwin.device import resolve_device
from facetwin.errors import InputError, ModelMismatchError, NoFaceError, OutputError, UsageError
from facetwin.extract.identity import SAME_PERSON
from facetwin.face.tracking import SmoothConfig
from facetwin.faceset import FaceSet
from facetwin.label import embed_watermark, video_metadata, write_image_with_label
from facetwin.lock import exclusive
from facetwin.media.files import atomic_write_bytes, make_folder
from facetwin.media.image import list_images, read_image, write_image
from facetwin.media.video import decode_frames, is_video_path, media_kind, probe
from facetwin.media.video_writer import (
    EncodeSettings,
    SegmentWriter,
    check_complete,
    container_format,
    join_segments,
    stream_timing,
)

log = logging.getLogger(__name__)

DIRECTIONS = ("a2b", "b2a")
IMAGE_OUT_SUFFIXES = (".png", ".jpg", ".jpeg")
PARTS_SUFFIX = ".parts"
STATE_FILE = "state.json"
#: Side of the aligned faces in the face set convert extracts for itself: it only needs the
#: landmarks, so the crops are the smallest extract allows (cheap to write, tiny on disk).
WORK_FACESET_SIZE = 32

T = TypeVar("T")


@dataclass
class ConvertConfig:
    """Options of one conversion (the CLI's flags map onto these one to one)."""

    direction: str = "a2b"  # a2b: faces of identity A are redrawn as B
    blend: str = "mask"  # overlay | mask | poisson
    color: str = "rct"  # none | rct | hist
    faceset: str | None = None  # use this face set's stored landmarks instead of detecting
    smooth: bool = True  # smoothed landmarks and a steady face scale (video)
    smoothing: SmoothConfig = field(default_factory=SmoothConfig)  # for detected video faces
    scale_sigma: float = 6.0  # frames: extra smoothing of the face size (0: none)
    threshold: float = SAME_PERSON  # embedding distance for "the source person"
    erode: float = 0.06  # blend edge inside the face region, fraction of the crop side
    feather: float = 0.03  # soft edge sigma (mask blender), fraction of the crop side
    sharpen: float = 0.5  # unsharp-mask amount on the drawn face once scaled into the frame
    occlusion: bool = True  # keep hands etc. in front of the face (one more forward per frame)
    preview: int | None = None  # write only this frame (image) and stop
    side_by_side: bool = False  # original | swapped
    label: bool = True  # watermark + metadata tag; False is logged as a warning
    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"
    segment_frames: int = 240  # frames per resumable video segment
    detector: str = "dlib-hog"
    max_detect_side: int = 1280
    redetect_every: int = 8
    device: str = "auto"
    jpeg_quality: int = 95
    progress: bool = True

    @property
    def source_side(self) -> str:
        return self.direction[0]

    @property
    def target_side(self) -> str:
        return self.direction[-1]


@dataclass
class ConvertSummary:
    """What a conversion did; ``timings`` splits its seconds by stage."""

    input: str
    output: str
    kind: str  # image | folder | video | preview
    frames: int
    frames_swapped: int
    faces_swapped: int
    faces_other: int  # faces of other people, left alone
    seconds: float
    frames_per_second: float
    timings: dict[str, float]
    audio: str = "none"  # copy | aac | mixed | none
    resumed_segments: int = 0  # video: finished segments reused; folder: finished images reused
    labelled: bool = True
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        split = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(self.timings.items()))
        lines = [
            f"{self.faces_swapped} faces swapped in {self.frames_swapped} of {self.frames} frames "
            f"({self.faces_other} faces of other people left alone) in {self.seconds:.1f} s "
            f"({self.frames_per_second:.1f} frames/s) -> {self.output}",
            f"time: {split}",
        ]
        if self.kind == "video":
            lines.append(f"audio: {self.audio}; resumed segments: {self.resumed_segments}")
        if self.kind == "folder" and self.resumed_segments:
            lines.append(f"resumed: {self.resumed_segments} images were already converted")
        if not self.labelled:
            lines.append("WARNING: output is NOT labelled as synthetic")
        if self.skipped:
            names = ", ".join(self.skipped[:5])
            lines.append(f"skipped {len(self.skipped)} unreadable files: {names}")
        return "\n".join(lines)


@dataclass
class Outcome:
    """What one input gave (the summary's counts)."""

    frames: int
    frames_swapped: int
    faces_swapped: int
    faces_other: int
    audio: str = "none"
    resumed_segments: int = 0
    skipped: list[str] = field(default_factory=list)


# -- labelling -------------------------------------------------------------------------------


class FrameLabeller:
    """``label.embed_watermark`` for every frame of a video, at the cost of one addition.

    The watermark is an additive luma pattern that depends on the frame size and the key only
    (facetwin.label), so it is taken once per size from a mid-grey frame and added. The first real
    frame is checked against ``embed_watermark`` itself; should the scheme ever depend on the
    content, the check fails and every frame goes through ``embed_watermark``.
    """

    def __init__(self) -> None:
        self._delta: dict[tuple[int, ...], np.ndarray] = {}
        self._exact = False

    def __call__(self, image: np.ndarray) -> np.ndarray:

        if self._exact:
            return embed_watermark(image)
        delta = self._delta.get(image.shape)
        if delta is not None:
            return np.clip(image + delta, 0, 255).astype(np.uint8)
        reference = embed_watermark(image)
        delta = embed_watermark(np.full(image.shape, 128, np.uint8)).astype(np.int16) - 128
        fast = np.clip(image + delta, 0, 255)
        if np.abs(fast - reference).max() > 1:
            log.debug("watermark depends on the content: embedding every frame")
            self._exact = True
        else:
            self._delta[image.shape] = delta
        return reference


def write_output_image(path: Path, image: np.ndarray, model_id: str, cfg: ConvertConfig) -> None:
    """Write a converted image, labelled unless ``cfg.label`` is off."""
    if cfg.label:
        write_image_with_label(path, image, model_id, True, jpeg_quality=cfg.jpeg_quality)
    else:
        write_image(path, image, cfg.jpeg_quality)


def image_output_path(path: Path) -> Path:
    """``path`` if it names a PNG/JPEG, else the same name as PNG (what we can label)."""
    return path if path.suffix.lower() in IMAGE_OUT_SUFFIXES else path.with_suffix(".png")


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


def job_digest(job: dict[str, Any]) -> str:
    """Short stable key of a :meth:`Converter.job` description."""
    return hashlib.sha1(json.dumps(job, sort_keys=True, default=str).encode()).hexdigest()


class FolderJournal:
    """Which images of a folder conversion are finished: ``OUTPUT/.facetwin-convert.jsonl``.

    One JSON line per finished image, appended after its output file was written atomically, so
    a line means a complete output; a line cut short by a crash is ignored. The first line holds
    the job key (model and settings): a journal of another job is started over. An image is
    taken as done only if its size and mtime are unchanged and its output still exists.
    """

    NAME = ".facetwin-convert.jsonl"

    def __init__(self, output: Path, key: str) -> None:
        self.path = output / self.NAME
        self.entries: dict[str, dict[str, Any]] = {}
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except OSError:  # none yet (or unreadable: started over)
            lines = []
        rows = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):  # anything else is not a line this class wrote
                rows.append(row)
        if rows and rows[0].get("key") == key:
            self.entries = {
                r["input"]: r
                for r in rows[1:]
                if isinstance(r.get("input"), str) and isinstance(r.get("output"), str)
            }
        else:
            if rows:
                log.warning("%s was left by a conversion with other settings: redoing", output)
            try:
                atomic_write_bytes(self.path, (json.dumps({"key": key}) + "\n").encode())
            except OSError as e:
                raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None

    @staticmethod
    def _stamp(path: Path) -> list[int]:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]

    def done(self, path: Path) -> dict[str, Any] | None:
        e = self.entries.get(path.name)
        if e is None or e.get("stamp") != self._stamp(path) or not Path(e["output"]).is_file():
            return None
        return e

    def add(self, path: Path, output: Path, counts: dict[str, int]) -> None:
        row = {"input": path.name, "stamp": self._stamp(path), "output": str(output), **counts}
        try:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None


def input_kind(path: Path) -> str:
    """'image', 'folder' or 'video'; InputError for anything else."""
    return media_kind(path)


def validate(cfg: ConvertConfig) -> None:
    """UsageError for options that cannot work, before any work is done."""
    if cfg.direction not in DIRECTIONS:
        raise UsageError(f"direction must be one of {', '.join(DIRECTIONS)}, not {cfg.direction!r}")
    BLENDERS.get(cfg.blend)
    COLOR_MATCHERS.get(cfg.color)
    from facetwin.extract.detectors import DETECTORS

    DETECTORS.get(cfg.detector)
    if not 0 <= cfg.crf <= 51:
        raise UsageError(f"crf must be within 0..51, not {cfg.crf}")
    if cfg.segment_frames < 1:
        raise UsageError("segment_frames must be at least 1")
    if cfg.preview is not None and cfg.preview < 0:
        raise UsageError("preview must be a frame number >= 0")
    if not (0 <= cfg.erode < 0.5 and 0 <= cfg.feather < 0.5):
        raise UsageError("--erode and --feather are fractions of the face size within 0..0.5")
    if not 0 < cfg.threshold <= 2:
        raise UsageError(
            f"--threshold must be within 0..2 (a 128-D distance), not {cfg.threshold:g}"
        )
    if not 0 <= cfg.sharpen <= 3:
        raise UsageError(f"sharpen must be within 0..3, not {cfg.sharpen:g}")


def check_output(src: Path, dst: Path, kind: str, cfg: ConvertConfig) -> None:
    """UsageError for an output that cannot be written as asked, before any work."""
    if dst.exists() and dst.resolve() == src.resolve():
        raise UsageError(f"{dst}: the output would overwrite the input")
    if cfg.preview is not None:
        return
    if kind == "video":
        container_format(dst)
        if dst.is_dir():
            raise UsageError(f"{dst} is a folder; the output of a video is a video file")
    elif kind == "image":
        if image_output_path(dst) != dst:
            raise UsageError(f"{dst}: write a converted image as .png or .jpg")
        if dst.is_dir():
            raise UsageError(f"{dst} is a folder; the output of an image is an image file")
    elif dst.exists() and not dst.is_dir():
        raise UsageError(f"{dst}: the output of a folder must be a folder")


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
