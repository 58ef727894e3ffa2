"""Frames decoded in a thread ahead of their use (media.video.read_ahead): the same frames in
the same order, a corrupt stream's error after the frames before it, no thread left behind."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from conftest import MAN, WOMAN
from facetwin.errors import InputError
from facetwin.media.video import iter_frames, read_ahead


def _threads() -> int:
    return sum(t.name == "facetwin-read-ahead" for t in threading.enumerate())


def test_the_same_frames_in_the_same_order() -> None:
    plain = list(iter_frames(MAN))
    ahead = list(read_ahead(iter_frames(MAN), depth=2))
    assert [i for i, _ in ahead] == [i for i, _ in plain] == list(range(len(plain)))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ahead, plain))
    assert _threads() == 0


def test_a_truncated_video_gives_the_same_frames(tmp_path: Path) -> None:
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(WOMAN.read_bytes()[:800_000])
    got = [i for i, _ in read_ahead(iter_frames(trunc))]
    assert got == [i for i, _ in iter_frames(trunc)] and 100 < len(got) < 472
    assert _threads() == 0


def test_a_decoding_error_comes_after_the_frames_before_it() -> None:
    def broken() -> Iterator[tuple[int, np.ndarray]]:  # a stream that fails at its 4th frame
        yield from itertools.islice(iter_frames(MAN), 3)
        raise InputError("clip.mp4: video is corrupt or truncated after frame 2")

    got: list[int] = []
    with pytest.raises(InputError, match="after frame 2"):
        for i, _ in read_ahead(broken()):
            got.append(i)
    assert got == [0, 1, 2] and _threads() == 0


def test_leaving_early_stops_the_thread() -> None:
    frames = read_ahead(iter_frames(WOMAN), depth=3)
    first = [next(frames)[0] for _ in range(5)]
    assert first == [0, 1, 2, 3, 4] and _threads() == 1
    frames.close()  # what a break or Ctrl-C in the loop does to the generator
    assert _threads() == 0


def test_a_missing_file_is_the_same_error() -> None:
    with pytest.raises(InputError, match="no such file"):
        next(read_ahead(iter_frames(Path("/nonexistent/clip.mp4"))))
