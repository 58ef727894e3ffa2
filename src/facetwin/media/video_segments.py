"""Resumable video encoding: frames into whole, independently decodable segment files.

Separate from the joining (:mod:`facetwin.media.video_join`), which runs once at the end and
knows about containers and audio: this module is what runs for every frame. See
:mod:`facetwin.media.video_writer` for why the output is written in segments.

A segment file is named ``seg_<first frame>_t<pts of that frame>.mp4``: the name alone says
where the segment goes and what timestamp its first frame had in the input, so a rerun can
trust any segment it finds (a segment is renamed into place only when complete).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.errors import OutputError

log = logging.getLogger(__name__)

SEGMENT_PREFIX = "seg_"
SEGMENT_SUFFIX = ".mp4"


@dataclass(frozen=True)
class EncodeSettings:
    """How output video is encoded. ``crf``: x264 constant quality, 0 lossless .. 51 worst
    (18 is visually near-lossless); ``preset``: x264 speed/size trade-off."""

    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str = "yuv420p"


@dataclass(frozen=True)
class StreamTiming:
    """Size and timing of an input's video stream; the output keeps them."""

    width: int
    height: int
    rate: Fraction  # average frame rate
    time_base: Fraction


def encoded_size(size: tuple[int, int], settings: EncodeSettings) -> tuple[int, int]:
    """(width, height) the encoder gets: rounded up to even for chroma-subsampled formats.

    4:2:0 (and 4:2:2's width) halve the chroma planes, so libx264 refuses odd sizes; phone and
    cropped clips have them. One replicated edge row or column (:func:`pad_to`) is the standard
    remedy (ffmpeg users write ``pad=ceil(iw/2)*2``) and loses no pixel of the input.
    """
    w, h = size
    if settings.pix_fmt.startswith(("yuv420", "yuvj420", "nv12")):
        return w + w % 2, h + h % 2
    if settings.pix_fmt.startswith(("yuv422", "yuvj422")):
        return w + w % 2, h
    return w, h


def pad_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` (H, W, 3) grown to (height, width) by repeating its last row/column; contiguous."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return np.ascontiguousarray(image)
    return np.pad(image, ((0, height - h), (0, width - w), (0, 0)), mode="edge")


# -- segment files ----------------------------------------------------------------------------


def segment_path(folder: Path, start: int, first_pts: int) -> Path:
    """``seg_<first frame>_t<pts of that frame>.mp4``: the name carries what joining needs."""
    return folder / f"{SEGMENT_PREFIX}{start:09d}_t{first_pts}{SEGMENT_SUFFIX}"


def parse_segment(path: Path) -> tuple[int, int] | None:
    """(first frame, its pts) from a segment file name; None for other files."""
    stem = path.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]
    start, _, pts = stem.partition("_t")
    try:
        return int(start), int(pts)
    except ValueError:
        return None


def finished_segments(folder: Path) -> dict[int, Path]:
    """Complete segment files in ``folder`` by first frame (temporary files are not listed)."""
    out = {}
    for p in folder.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"):
        parsed = parse_segment(p)
        if parsed is not None:
            out[parsed[0]] = p
    return dict(sorted(out.items()))


class SegmentWriter:
    """Encodes frames into ``folder/seg_<first frame>.mp4``, ``segment_frames`` per file.

    Frames must come in order; a frame whose segment is already finished must not be written
    (use :meth:`is_finished`). Closing (or reaching the next segment) renames the temporary
    file into place; :meth:`abort` drops an unfinished one.
    """

    def __init__(
        self,
        folder: Path,
        timing: StreamTiming,
        settings: EncodeSettings,
        segment_frames: int,
        size: tuple[int, int] | None = None,
    ) -> None:
        self.folder = folder
        self.timing = timing
        self.settings = settings
        self.segment_frames = segment_frames
        self.width, self.height = encoded_size(size or (timing.width, timing.height), settings)
        self.finished = finished_segments(folder)
        self._container: Any = None
        self._stream: Any = None
        self._start = -1
        self._tmp: Path | None = None
        self._last_pts: int | None = None
        self._first_pts: int | None = None

    def segment_of(self, index: int) -> int:
        return index - index % self.segment_frames

    def is_finished(self, index: int) -> bool:
        return self.segment_of(index) in self.finished

    def _open(self, start: int) -> None:
        import av

        self._start = start
        self._first_pts = None
        self._tmp = self.folder / f".tmp-{SEGMENT_PREFIX}{start:09d}{SEGMENT_SUFFIX}"
        try:
            self._container = av.open(str(self._tmp), "w", format="mp4")
        except (av.error.FFmpegError, OSError) as e:
            raise OutputError(f"cannot write {self._tmp}: {e}") from None
        s = self._container.add_stream(self.settings.codec, rate=self.timing.rate)
        s.width, s.height, s.pix_fmt = self.width, self.height, self.settings.pix_fmt
        s.time_base = self.timing.time_base
        s.codec_context.time_base = self.timing.time_base
        if self.settings.codec in ("libx264", "libx265"):
            s.options = {"crf": str(self.settings.crf), "preset": self.settings.preset}
        self._stream = s
        self._last_pts = None

    def _pts(self, index: int, pts: int | None) -> int:
        """The input's pts, or one derived from the frame rate when the input has none; always
        increasing (an encoder rejects repeated timestamps)."""
        if pts is None:
            pts = round(index / (self.timing.rate * self.timing.time_base))
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        return int(pts)

    def write(self, index: int, image: np.ndarray, pts: int | None) -> None:
        """Encode one RGB frame (the writer's size) with its input timestamp."""
        import av

        start = self.segment_of(index)
        if start != self._start:
            self._finish()
            self._open(start)
        frame = av.VideoFrame.from_ndarray(pad_to(image, self.width, self.height), format="rgb24")
        frame.pts = self._pts(index, pts)
        if self._first_pts is None:
            self._first_pts = frame.pts
        frame.time_base = self.timing.time_base
        try:
            for pkt in self._stream.encode(frame):
                self._container.mux(pkt)
        except (av.error.FFmpegError, OSError) as e:
            raise OutputError(f"cannot encode video into {self._tmp}: {e}") from None

    def _finish(self) -> None:
        import av

        if self._container is None:
            return
        try:
            for pkt in self._stream.encode():
                self._container.mux(pkt)
            self._container.close()
        except (av.error.FFmpegError, OSError) as e:
            raise OutputError(f"cannot finish video segment {self._tmp}: {e}") from None
        final = segment_path(self.folder, self._start, int(self._first_pts or 0))
        try:
            os.replace(self._tmp, final)  # type: ignore[arg-type]
        except OSError as e:
            raise OutputError(f"cannot finish video segment {final}: {e.strerror or e}") from None
        self.finished[self._start] = final
        self._container = None

    def close(self) -> None:
        """Finish the segment being written."""
        self._finish()

    def abort(self) -> None:
        """Drop the unfinished segment (an interrupted run redoes it)."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is deleted anyway
                log.debug("closing an aborted segment failed", exc_info=True)
            self._container = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
