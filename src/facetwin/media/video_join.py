"""Joining the segments into the output: one remux of their packets with the input's audio.

Separate from the segment encoder (:mod:`facetwin.media.video_segments`) because this is the
container and audio side: which muxer an output suffix takes, restamping each segment's packets
with the input's timestamps, and copying the input's audio packet for packet - or transcoding it
to AAC when the output container cannot hold its codec (PCM mu-law into MP4, for example).
Nothing is re-encoded here except such audio.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from facetwin.errors import OutputError, UsageError
from facetwin.media.video_segments import parse_segment

log = logging.getLogger(__name__)

#: Output containers and the muxer that writes each (all hold H.264 and AAC).
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def container_format(path: Path) -> str:
    """The muxer for an output path; UsageError for containers we do not write."""
    fmt = CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"{path}: cannot write video as {path.suffix or 'no suffix'}; "
            f"use one of {', '.join(sorted(CONTAINERS))}"
        )
    return fmt


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
