"""Video reading with PyAV: frames streamed one at a time (constant memory, any length)."""

from __future__ import annotations

import bisect
import logging
import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from facetwin.errors import InputError
from facetwin.media.image import is_image_path

log = logging.getLogger(__name__)
T = TypeVar("T")

VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frame_count: int | None  # from the container; None when it does not say
    has_audio: bool


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def _open(path: Path):  # type: ignore[no-untyped-def]
    import av

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable video ({e})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: has no video stream")
    return container


def probe(path: str | Path) -> VideoInfo:
    """Size, frame rate, frame count and audio presence of a video."""
    with _open(Path(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or s.guessed_rate or 25)
        return VideoInfo(
            width=s.codec_context.width,
            height=s.codec_context.height,
            fps=fps,
            frame_count=int(s.frames) or None,
            has_audio=bool(c.streams.audio),
        )


def iter_frames(path: str | Path, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame index, RGB uint8 frame) for every frame from ``start`` on.

    Decoding is sequential from the beginning (frames before ``start`` are decoded and dropped):
    seeking lands on keyframes and would make frame indices depend on the codec. A corrupt stream
    raises InputError after the frames that did decode.
    """
    for f in decode_frames(path, start):
        yield f.index, f.image


def read_ahead(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """``items`` in order, produced by a thread up to ``depth`` ahead of the consumer.

    Why: decoding, and above all turning the frame into RGB (swscale), is a sizeable part of
    extract's time a frame, and PyAV runs it without the GIL; in a thread it overlaps with the
    detector and landmarks on the other core instead of adding to them (1.21x extract's frames/s
    on the woman's clip, benchmarks/results/read-ahead-cpu.json). The
    frames are the same, in the same order; an exception of ``items`` (a corrupt stream) is
    raised here after the items before it. Leaving the loop early (break, Ctrl-C) stops the
    thread and closes ``items`` within one item's production.
    """
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(items)
        try:
            for item in it:
                if not offer((True, item)):
                    return
            offer((False, None))
        except BaseException as e:  # handed to the consumer, raised in its thread
            offer((False, e))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="facetwin-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            more, value = box.get()
            if not more:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        worker.join()


@dataclass(frozen=True)
class TimedFrame:
    index: int
    image: np.ndarray  # RGB uint8
    pts: int | None  # in the stream's time base


def decode_frames(
    path: str | Path, start: int = 0, index: FrameIndex | None = None
) -> Iterator[TimedFrame]:
    """Every frame from ``start`` on with its timestamp, streamed (constant memory).

    With the video's :class:`FrameIndex`, decoding starts at the last keyframe before
    ``start`` instead of at the beginning (what makes a segment task of a long video cheap);
    the frame indices stay those of decoding from the beginning, and if the decoder's frames
    do not line up with the index (a stream the index misreads) it falls back to that.
    """
    p = Path(path)
    seek = index.seek_pts(start) if index is not None and start > 0 else None
    if seek is not None and index is not None:
        seeked = _decode_from_keyframe(p, start, seek, index)
        first = next(seeked, None)
        if first is not None and first.index == start:
            yield first
            yield from seeked
            return
        seeked.close()
        log.debug("%s: frames after a seek do not match the index; decoding from the start", p)
    yield from _decode_linear(p, start)


def _decode_linear(p: Path, start: int) -> Iterator[TimedFrame]:
    import av

    with _open(p) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        i = -1
        try:
            for i, frame in enumerate(c.decode(stream)):
                if i >= start:
                    yield TimedFrame(i, frame.to_ndarray(format="rgb24"), frame.pts)
        except av.error.FFmpegError as e:
            raise InputError(f"{p}: video is corrupt or truncated after frame {i} ({e})") from None
        if i < 0:
            raise InputError(f"{p}: no decodable video frames")


def _decode_from_keyframe(
    p: Path, start: int, seek_pts: int, index: FrameIndex
) -> Generator[TimedFrame, None, None]:
    """Frames from ``start`` on, decoding from the keyframe at ``seek_pts``; stops (so the
    caller can fall back) at a frame whose timestamp is not the next one the index expects."""
    import av

    position = {pts: i for i, pts in enumerate(index.pts)}
    expected = start
    with _open(p) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            c.seek(seek_pts, stream=stream, backward=True, any_frame=False)
            for frame in c.decode(stream):
                i = position.get(frame.pts) if frame.pts is not None else None
                if i is not None and i < start:
                    continue  # between the keyframe and the segment: decoded, not wanted
                if i != expected:
                    if expected == start:
                        return  # misaligned before anything was yielded: fall back
                    raise InputError(f"{p}: frame {expected} is missing after a seek")
                yield TimedFrame(i, frame.to_ndarray(format="rgb24"), frame.pts)
                expected += 1
        except av.error.FFmpegError as e:
            raise InputError(
                f"{p}: video is corrupt or truncated after frame {expected - 1} ({e})"
            ) from None


@dataclass(frozen=True)
class FrameIndex:
    """Every frame's timestamp in display order, and which frames are keyframes, read by
    demuxing alone (no decoding: milliseconds for a short clip).

    Why: a task that converts frames 90,000-90,239 of a long video should not decode the 90,000
    before them. A decoder can start at a keyframe; the index says which keyframe precedes a
    frame and which timestamp each frame index has, so frames decoded after a seek keep the
    indices that decoding from the beginning gives them.
    """

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]  # frame indices (display order) of the keyframes

    def seek_pts(self, start: int) -> int | None:
        """Timestamp of the last keyframe at or before frame ``start``; None when that is the
        first frame (no seek needed)."""
        k = bisect.bisect_right(self.keyframes, start) - 1
        if k < 0 or self.keyframes[k] == 0 or start >= len(self.pts):
            return None
        return self.pts[self.keyframes[k]]


def frame_index(path: str | Path) -> FrameIndex | None:
    """The :class:`FrameIndex` of a video; None when its packets lack timestamps or repeat one
    (then frames can only be found by decoding from the start)."""
    import av

    packets: list[tuple[int, bool]] = []
    with _open(Path(path)) as c:
        try:
            for pkt in c.demux(c.streams.video[0]):
                if pkt.size > 0:
                    if pkt.pts is None:
                        return None
                    packets.append((int(pkt.pts), bool(pkt.is_keyframe)))
        except av.error.FFmpegError:
            return None
    pts = sorted(p for p, _ in packets)
    if len(set(pts)) != len(pts):
        return None
    position = {p: i for i, p in enumerate(pts)}
    keys = sorted(position[p] for p, key in packets if key)
    return FrameIndex(tuple(pts), tuple(keys))


def media_kind(path: Path) -> str:
    """'folder', 'video' or 'image' for an input path; InputError for anything else."""
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if is_video_path(path):
        return "video"

    if is_image_path(path):
        return "image"
    raise InputError(f"{path}: not an image, video or folder (unknown extension {path.suffix!r})")


def copy_head(src: str | Path, dst: str | Path, seconds: float) -> Path:
    """The first ``seconds`` of a clip (video and audio), packets copied without re-encoding."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = {
            s.index: out.add_stream_from_template(s)
            for s in inp.streams
            if s.type in ("video", "audio")
        }
        for pkt in inp.demux(*[s for s in inp.streams if s.index in streams]):
            t = pkt.dts if pkt.dts is not None else pkt.pts
            if pkt.size and t is not None and t * pkt.time_base < seconds:
                pkt.stream = streams[pkt.stream.index]
                out.mux(pkt)
    return Path(dst)


def resize_video(src: str | Path, dst: str | Path, width: int, fps: int = 25) -> Path:
    """Every frame of a clip re-encoded (H.264) at ``width`` px wide: the phone or CCTV size
    that tests and benchmarks make small-face footage with, from real clips."""
    import av
    import cv2

    with av.open(str(dst), "w") as out:
        stream = None
        for _, frame in iter_frames(src):
            if stream is None:
                h, w = frame.shape[:2]
                stream = out.add_stream("libx264", rate=fps)
                stream.width, stream.height = width, int(round(h * width / w / 2)) * 2
                stream.pix_fmt = "yuv420p"
            small = cv2.resize(frame, (stream.width, stream.height), interpolation=cv2.INTER_AREA)
            picture = av.VideoFrame.from_ndarray(small.astype(np.uint8), format="rgb24")
            out.mux(stream.encode(picture))
        if stream is not None:
            out.mux(stream.encode(None))
    return Path(dst)
