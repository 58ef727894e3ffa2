"""``facetwin verify``: does a file carry facetwin's label? The tag, and the watermark in the
image or in sampled video frames (a binomial test over the frames).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from facetwin.errors import InputError
from facetwin.label.tag import IMAGE_SUFFIXES, open_video, read_bytes, tags_in_bytes, video_tags
from facetwin.label.watermark import (
    DETECTION_THRESHOLD,
    check_frames,
    detect_or_none,
    frames_needed,
)
from facetwin.media.image import decode_image

log = logging.getLogger(__name__)

#: Videos with at most this many frames are decoded straight through when sampling frames;
#: longer ones are sampled by seeking, which is faster there but less exact.
SEQUENTIAL_LIMIT = 1500


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found in one file.

    For a video, ``score`` is the median of the frames' scores and ``pooled_score`` the score of
    all sampled frames together; ``frames_needed`` is how many marked frames the binomial test
    asks for. ``malformed_tags`` counts metadata values that start like our tag but are not
    one (never shown: they could hold anything).
    """

    path: Path
    kind: Literal["image", "video"]
    metadata_tag: str | None
    watermark_found: bool
    frames_checked: int
    frames_marked: int
    score: float
    pooled_score: float = 0.0
    frames_needed: int = 1
    malformed_tags: int = 0

    @property
    def labelled(self) -> bool:
        """True when either label survives: the tag or the watermark."""
        return self.metadata_tag is not None or self.watermark_found

    def summary(self) -> str:
        """One line for the CLI."""
        tag = repr(self.metadata_tag) if self.metadata_tag else "none"
        mark = "found" if self.watermark_found else "not found"
        pooled = f", pooled {self.pooled_score:.1f}" if self.kind == "video" else ""
        return (
            f"{self.path}: {self.kind}, metadata tag {tag}, watermark {mark} "
            f"({self.frames_marked}/{self.frames_checked} frames, score {self.score:.1f}{pooled})"
        )


# --- verify ---------------------------------------------------------------------------------------


def _frame_indices(total: int, count: int) -> set[int]:
    """``count`` frame numbers spread evenly over ``total`` frames (both ends included)."""
    return {int(i) for i in np.linspace(0, total - 1, min(count, total)).round()}


def _sample_frames(container, count: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Up to ``count`` RGB frames spread through the first video stream.

    Short videos are decoded straight through (exact positions); long ones are sampled by
    seeking to evenly spaced times, so checking an hour-long file stays quick.
    """
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    total = stream.frames
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    if not total and duration and stream.average_rate:
        total = int(duration * float(stream.average_rate))
    frames: list[np.ndarray] = []
    if total > SEQUENTIAL_LIMIT and duration and stream.time_base is not None:
        start = stream.start_time or 0
        for t in (np.arange(count) + 0.5) / count * duration:
            target = start + int(t / stream.time_base)
            container.seek(target, stream=stream)
            for frame in container.decode(stream):
                if frame.pts is None or frame.pts >= target:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    break
        return frames
    wanted = _frame_indices(total, count) if total else set(range(count))
    for index, frame in enumerate(container.decode(stream)):
        if index in wanted:
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= len(wanted):
                break
    return frames


def _verify_image(path: Path) -> VerifyReport:
    """:func:`verify` of a photo: its tag and the watermark in it."""
    data = read_bytes(path)
    rgb = decode_image(data)  # the codecs' own messages silenced, empty data is None
    if rgb is None:
        raise InputError(f"{path}: not a readable image")
    tag, malformed = tags_in_bytes(data)
    result = detect_or_none(rgb)
    score = result.score if result else 0.0
    return VerifyReport(
        path=path,
        kind="image",
        metadata_tag=tag,
        watermark_found=bool(result and result.found),
        frames_checked=1,
        frames_marked=int(bool(result and result.found)),
        score=score,
        pooled_score=score,
        malformed_tags=malformed,
    )


def verify(path: str | os.PathLike[str], max_frames: int = 16) -> VerifyReport:
    """Check a file for both labels: the metadata tag and the watermark.

    For a video, up to ``max_frames`` frames spread through it are checked. The watermark
    counts as found when either test rejects "unmarked" (overall false-positive bound < 1e-6):

    * pooled: the folds of all sampled frames added up reach DETECTION_THRESHOLD
      (P <= 2.5e-7 for any unmarked video, however alike its frames); or
    * binomial: at least :func:`frames_needed` frames carry the mark on their own, a count that
      unmarked video reaches with P <= VIDEO_FRAME_ALPHA at the per-frame false-alarm rate
      FRAME_FALSE_ALARM (4 of 16 frames, 3 of 8).

    ``score`` is the median frame score, ``pooled_score`` the pooled one.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _verify_image(path)
    return _verify_video(path, max_frames)


def _verify_video(path: Path, max_frames: int) -> VerifyReport:
    """:func:`verify` of a video: its container tags, and the watermark in up to
    ``max_frames`` sampled frames (pooled, and counted against :func:`frames_needed`)."""
    import av

    with open_video(path) as container:
        if not container.streams.video:
            raise InputError(f"{path}: has no video stream")
        tag, malformed = video_tags(container)
        try:
            frames = _sample_frames(container, max_frames)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot decode video ({exc})") from None
    if not frames:
        raise InputError(f"{path}: no frames could be decoded")
    results, pooled = check_frames(frames)
    marked = sum(bool(r and r.found) for r in results)
    needed = frames_needed(len(frames))
    return VerifyReport(
        path=path,
        kind="video",
        metadata_tag=tag,
        watermark_found=marked >= needed or pooled >= DETECTION_THRESHOLD,
        frames_checked=len(frames),
        frames_marked=marked,
        score=float(np.median([r.score if r else 0.0 for r in results])),
        pooled_score=pooled,
        frames_needed=needed,
        malformed_tags=malformed,
    )
