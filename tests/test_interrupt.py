"""Ctrl-C during video extraction: the resumed face set equals an uninterrupted run.

The first SIGINT is a request honoured between frames; a second one stops at once, mid-frame.
Either way no frame may be lost and no track split (issue 15: frames 131, 162, 221 went missing
when the position saved at the interrupt was the frame being processed).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MAN, WOMAN
from facetwin.extract import pipeline
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.faceset import FaceSet
from facetwin.interrupt import GracefulStop


def dump(path: Path) -> tuple[list, dict[str, str]]:
    with FaceSet.open(path) as fs:
        rows = fs.dump()
    files = {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in (path / "faces").glob("*")}
    return rows, files


def sigint_at(monkeypatch: pytest.MonkeyPatch, call: int, times: int) -> None:
    """Send ``times`` real SIGINTs from inside the ``call``-th face analysis (mid-frame)."""
    real = pipeline.analyse_face
    seen = [0]

    def wrapped(*a, **kw):  # type: ignore[no-untyped-def]
        seen[0] += 1
        if seen[0] == call:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return real(*a, **kw)

    monkeypatch.setattr(pipeline, "analyse_face", wrapped)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, dict[str, str]]:
    out = tmp_path_factory.mktemp("ref") / "man"
    extract([MAN], out, ExtractConfig(progress=False, commit_every=16))
    return dump(out)


@pytest.mark.parametrize(
    "call, times",
    [(3, 1), (40, 1), (40, 2), (72, 1)],
    ids=["early", "mid-commit-window", "second-ctrl-c-mid-frame", "last-frame"],
)
def test_ctrl_c_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference, call: int, times: int
) -> None:
    out = tmp_path / "fs"
    cfg = ExtractConfig(progress=False, commit_every=16)
    sigint_at(monkeypatch, call, times)
    with pytest.raises(KeyboardInterrupt):
        extract([MAN], out, cfg)
    with FaceSet.open(out) as fs:
        next_frame = fs.conn.execute("SELECT next_frame FROM sources").fetchone()[0]
        stored = fs.conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    # a graceful stop keeps the frame it was on; a hard one keeps the last commit
    assert next_frame == (call if times == 1 else 32) and stored == next_frame
    monkeypatch.undo()
    extract([MAN], out, cfg)
    assert dump(out) == reference


def test_the_first_ctrl_c_is_a_request_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with GracefulStop() as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.check()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def committed_frame(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as c:
            row = c.execute("SELECT next_frame FROM sources").fetchone()
        return int(row[0]) if row else 0
    except sqlite3.Error:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_ctrl_c_at_a_random_moment_of_the_cli(
    tmp_path: Path, faceset_woman: Path, seed: int
) -> None:
    """The real command, a real Ctrl-C at a random moment: exit 130, one line, exact resume."""
    out = tmp_path / "fs"
    cmd = [sys.executable, "-m", "facetwin.cli", "extract", "-q", str(WOMAN), "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while (
        time.time() < deadline and proc.poll() is None and not committed_frame(out / "faceset.db")
    ):
        time.sleep(0.05)
    time.sleep(random.Random(seed).uniform(0.0, 2.0))
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert 0 < committed_frame(out / "faceset.db") < 472, "the Ctrl-C must land mid-video"
    extract([WOMAN], out, ExtractConfig(progress=False))
    assert dump(out) == dump(faceset_woman)
