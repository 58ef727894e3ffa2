"""Video output with PyAV: resumable segment encoding, then one remux with the input's audio.

Why segments. A conversion of a long video can be interrupted (Ctrl-C, a crash, a full disk).
Frames are encoded into segment files of ``segment_frames`` frames under ``OUTPUT.parts/``; a
segment is written to a temporary name and renamed when complete, so a segment file on disk is
always whole, and a rerun skips the segments it finds. At the end the segments' packets are
remuxed - not re-encoded - into the output, interleaved with the input's audio packets.

Why the input's timestamps. Each output frame keeps the presentation timestamp (and time base)
of the input frame it came from, so the frame rate, variable frame rates and the sync with the
copied audio are exactly the input's. Segments are encoded independently (each starts with a
key frame) with the same settings, so their packets join into one valid stream.

Audio is copied packet for packet when the output container can hold its codec, and transcoded
to AAC when it cannot (PCM mu-law into MP4, for example).
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.errors import InputError, OutputError, UsageError
from facetwin.media.video import _open

log = logging.getLogger(__name__)

#: Output containers and the muxer that writes each (all hold H.264 and AAC).
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
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


def container_format(path: Path) -> str:
    """The muxer for an output path; UsageError for containers we do not write."""
    fmt = CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"{path}: cannot write video as {path.suffix or 'no suffix'}; "
            f"use one of {', '.join(sorted(CONTAINERS))}"
        )
    return fmt


def stream_timing(path: str | Path) -> StreamTiming:
    """Size, average frame rate and time base of the first video stream."""
    with _open(Path(path)) as c:
        s = c.streams.video[0]
        rate = s.average_rate or s.guessed_rate or Fraction(25)
        return StreamTiming(
            s.codec_context.width,
            s.codec_context.height,
            Fraction(rate),
            Fraction(s.time_base or Fraction(1, 90000)),
        )


def count_video_packets(path: str | Path) -> int:
    """Video packets in the file, read without decoding (fast: a few ms for a short clip)."""
    import av

    p = Path(path)
    n = 0
    with _open(p) as c:
        try:
            for pkt in c.demux(c.streams.video[0]):
                n += pkt.size > 0
        except av.error.FFmpegError:
            pass  # a damaged tail: count what is there, the caller compares with the header
    return n


def check_complete(path: str | Path, declared: int | None) -> None:
    """InputError when a video holds fewer frames than its header declares (a truncated copy).

    FFmpeg decodes a truncated MP4 whose index comes first without any error, just fewer
    frames; finding that out before hours of work, not after, is the point.
    """
    if not declared:
        return
    have = count_video_packets(path)
    if have < declared - max(2, declared // 100):
        raise InputError(
            f"{path}: video is truncated or corrupt (holds {have} of the {declared} frames its "
            "header declares)"
        )


# -- segments ----------------------------------------------------------------------------------


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


# -- joining -----------------------------------------------------------------------------------


def _packet_time(pkt: Any) -> float:
    t = pkt.dts if pkt.dts is not None else pkt.pts
    return float((t or 0) * pkt.time_base)


def _video_packets(segments: list[Path], out_stream: Any, counts: list[int]) -> Iterator[Any]:
    """The segments' packets, restamped with the input's timestamps.

    The MP4 muxer may shift a segment's timestamps (its edit list is rounded to the movie time
    scale: a few ticks). The name of each segment holds the pts its first frame had in the
    input, so the whole segment is moved back by one offset.
    """
    import av

    for path in segments:
        first_pts = parse_segment(path)[1]  # type: ignore[index]
        with av.open(str(path)) as c:
            packets = [p for p in c.demux(c.streams.video[0]) if p.size > 0]
        if not packets:
            raise OutputError(f"video segment {path} is empty; delete it and convert again")
        offset = first_pts - min(p.pts for p in packets if p.pts is not None)
        for pkt in packets:
            if pkt.pts is not None:
                pkt.pts += offset
            if pkt.dts is not None:
                pkt.dts += offset
            pkt.stream = out_stream
            yield pkt
        counts.append(len(packets))


def _audio_packets(source: Any, streams: dict[int, tuple[Any, bool]]) -> Iterator[Any]:
    """Packets of the input's audio: copied, or decoded and re-encoded (``streams``: input
    stream index -> (output stream, copy?))."""
    ins = [s for s in source.streams.audio if s.index in streams]
    for pkt in source.demux(*ins):
        out, copy = streams[pkt.stream.index]
        if copy:
            if pkt.size == 0:
                continue
            pkt.stream = out
            yield pkt
        else:
            for frame in pkt.decode():
                yield from out.encode(frame)
    for out, copy in streams.values():
        if not copy:
            yield from out.encode(None)


def _open_joined(
    path: Path, fmt: str, template: Any, source: Any, transcode: bool, metadata: dict[str, str]
) -> tuple[Any, Any, dict[int, tuple[Any, bool]]]:
    """Output container with the video stream and one stream per input audio stream."""
    import av

    out = av.open(str(path), "w", format=fmt)
    try:
        out.metadata.update(metadata)
        video = out.add_stream_from_template(template)
        audio: dict[int, tuple[Any, bool]] = {}
        for s in source.streams.audio if source is not None else ():
            if not transcode:
                try:
                    audio[s.index] = (out.add_stream_from_template(s), True)
                    continue
                except ValueError:  # the container cannot hold this codec
                    log.info(
                        "audio codec %s cannot go into %s: transcoding to AAC",
                        s.codec_context.name,
                        path.suffix,
                    )
            a = out.add_stream("aac", rate=s.codec_context.sample_rate or 48000)
            a.layout = s.codec_context.layout.name if s.codec_context.layout else "stereo"
            audio[s.index] = (a, False)
        out.start_encoding()
    except BaseException:
        with contextlib.suppress(Exception):  # keep the error that brought us here
            out.close()
        raise
    return out, video, audio


def join_segments(
    segments: list[Path],
    output: Path,
    audio_from: Path | None,
    metadata: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Remux ``segments`` (in order) and the audio of ``audio_from`` into ``output``, atomically.

    Returns (video frames written, audio mode: 'copy', 'aac', 'mixed' or 'none').
    """
    import av

    if not segments:
        raise OutputError(f"no video segments to join into {output}")
    fmt = container_format(output)
    tmp = output.with_name(f".tmp-{output.name}")
    source = None
    try:
        with av.open(str(segments[0])) as first:
            template = first.streams.video[0]
            if audio_from is not None:
                source = av.open(str(audio_from))
            try:
                out, video, audio = _open_joined(tmp, fmt, template, source, False, metadata or {})
            except av.error.FFmpegError as e:  # the header was refused: retry with AAC
                log.info("copying the audio into %s failed (%s): transcoding to AAC", output, e)
                tmp.unlink(missing_ok=True)
                out, video, audio = _open_joined(tmp, fmt, template, source, True, metadata or {})
        counts: list[int] = []
        with out:
            parts = [_video_packets(segments, video, counts)]
            if audio:
                parts.append(_audio_packets(source, audio))
            for pkt in heapq.merge(*parts, key=_packet_time):
                out.mux(pkt)
        os.replace(tmp, output)
    except (av.error.FFmpegError, OSError) as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {output}: {e}") from None
    finally:
        if source is not None:
            source.close()
    modes = {copy for _, copy in audio.values()}
    if not modes:
        return sum(counts), "none"
    return sum(counts), "mixed" if len(modes) > 1 else "copy" if True in modes else "aac"
