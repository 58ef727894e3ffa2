"""Video reading with PyAV: frames streamed one at a time (constant memory, any length)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.errors import InputError
from facetwin.media.image import is_image_path

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


@dataclass(frozen=True)
class TimedFrame:
    index: int
    image: np.ndarray  # RGB uint8
    pts: int | None  # in the stream's time base


def decode_frames(path: str | Path, start: int = 0) -> Iterator[TimedFrame]:
    """Every frame from ``start`` on with its timestamp, streamed (constant memory)."""
    import av

    p = Path(path)
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
