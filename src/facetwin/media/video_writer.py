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

Where things are: the per-frame segment encoder (:class:`SegmentWriter`, the segment file names,
the encoder settings) is :mod:`facetwin.media.video_segments`; the final remux with the audio
(:func:`join_segments`, :func:`container_format`) is :mod:`facetwin.media.video_join`. This module
reads what the writer needs from the input (its timing, whether it is complete) and re-exports
the other two's names, so callers import everything from here.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from facetwin.errors import InputError
from facetwin.media.video import _open
from facetwin.media.video_join import CONTAINERS, container_format, join_segments
from facetwin.media.video_segments import (
    SEGMENT_PREFIX,
    SEGMENT_SUFFIX,
    EncodeSettings,
    SegmentWriter,
    StreamTiming,
    encoded_size,
    finished_segments,
    pad_to,
    parse_segment,
    segment_path,
)


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


__all__ = [
    "CONTAINERS",
    "SEGMENT_PREFIX",
    "SEGMENT_SUFFIX",
    "EncodeSettings",
    "SegmentWriter",
    "StreamTiming",
    "check_complete",
    "container_format",
    "count_video_packets",
    "encoded_size",
    "finished_segments",
    "join_segments",
    "pad_to",
    "parse_segment",
    "segment_path",
    "stream_timing",
]
