"""What a conversion is asked to do (:class:`ConvertConfig`), how the request is checked before
anything is written, and what a conversion reports (:class:`ConvertSummary`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facetwin.convert.blend import BLENDERS
from facetwin.convert.color import COLOR_MATCHERS
from facetwin.errors import UsageError
from facetwin.extract.identity import SAME_PERSON
from facetwin.face.tracking import SmoothConfig
from facetwin.media.video import media_kind
from facetwin.media.video_writer import (
    container_format,
)
from facetwin.registry import Registry, recorded_settings

log = logging.getLogger(__name__)

DIRECTIONS = ("a2b", "b2a")
IMAGE_OUT_SUFFIXES = (".png", ".jpg", ".jpeg")
PARTS_SUFFIX = ".parts"
STATE_FILE = "state.json"
#: Side of the aligned faces in the face set convert extracts for itself: it only needs the
#: landmarks, so the crops are the smallest extract allows (cheap to write, tiny on disk).
WORK_FACESET_SIZE = 32


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
    hands: bool = True  # also look for hands near each face (MediaPipe's hand networks)
    preview: int | None = None  # write only this frame (image) and stop
    side_by_side: bool = False  # original | swapped
    label: bool = True  # watermark + metadata tag; False is logged as a warning
    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"
    segment_frames: int = 240  # frames per resumable video segment
    detector: str = "dlib-hog"
    # stills without a face set: a second detector's faces that ``detector`` missed, as extract
    # does ("auto": mtcnn behind dlib-hog; "": none)
    photo_detector: str = "auto"
    threads: int = 1  # torch threads for the model on a CPU (0: torch's choice); see device.py
    ray: str | None = None  # video: run the frames pass on Ray ("local" or a cluster address)
    ray_workers: int = 0  # local Ray cluster: worker processes (0: one per CPU core)
    max_detect_side: int = 1280
    redetect_every: int = 8
    device: str = "auto"
    jpeg_quality: int = 95
    progress: bool = True
    # the blender's, colour matcher's and detector's own settings, plugin -> setting -> value
    # (--poisson-mode ...); those not at their defaults are part of the job key, so a rerun
    # with others starts over
    plugin_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def settings_of(self, plugin: str) -> dict[str, Any]:
        """The settings given for ``plugin`` (the rest keep the plugin's defaults)."""
        return dict(self.plugin_settings.get(plugin, {}))

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


def input_kind(path: Path) -> str:
    """'image', 'folder' or 'video'; InputError for anything else."""
    return media_kind(path)


def plugin_record(cfg: ConvertConfig) -> dict[str, dict[str, Any]]:
    """The plugin settings a conversion records (in its job key): the values of its blender,
    colour matcher and detector that differ from their defaults."""
    from facetwin.extract.detectors import DETECTORS

    used: list[tuple[Registry[Any], str]] = [
        (BLENDERS, cfg.blend),
        (COLOR_MATCHERS, cfg.color),
        (DETECTORS, cfg.detector),
    ]
    return recorded_settings(cfg.plugin_settings, used)


def validate(cfg: ConvertConfig) -> None:
    """UsageError for options that cannot work, before any work is done."""
    if cfg.direction not in DIRECTIONS:
        raise UsageError(f"direction must be one of {', '.join(DIRECTIONS)}, not {cfg.direction!r}")
    BLENDERS.get(cfg.blend)
    COLOR_MATCHERS.get(cfg.color)
    from facetwin.extract.detectors import DETECTORS

    DETECTORS.get(cfg.detector)
    if cfg.photo_detector not in ("auto", ""):
        DETECTORS.get(cfg.photo_detector)
    plugin_record(cfg)  # a one-line UsageError for a bad value
    if not 0 <= cfg.crf <= 51:
        raise UsageError(f"crf must be within 0..51, not {cfg.crf}")
    if cfg.threads < 0:
        raise UsageError("threads must be 0 (torch's choice) or more")
    if cfg.ray_workers < 0:
        raise UsageError("ray_workers must be 0 (one per CPU core) or more")
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


def image_output_path(path: Path) -> Path:
    """``path`` if it names a PNG/JPEG, else the same name as PNG (what we can label)."""
    return path if path.suffix.lower() in IMAGE_OUT_SUFFIXES else path.with_suffix(".png")
