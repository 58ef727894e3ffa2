"""Training loses nothing and fails in one line (issue 15): snapshots by time as well as by
iterations, a full disk while writing one, model folders that cannot be created, two runs on
one model folder, the same face set twice, and a failed run that leaves nothing behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError

from facetwin.cli import main
from facetwin.errors import BusyError
from facetwin.faceset import FaceSet
from facetwin.train import TrainConfig, build_model, load_model, read_loss_log, train
from facetwin.train import checkpoint as ckpt
from facetwin.train.checkpoint import (
    FORMAT,
    STATE_FILE,
    list_snapshots,
    prune,
    remove_partial,
    snapshot_reason,
)
from facetwin.train.trainer import make_optimizer, weights_digest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def lite_cfg(faceset_a, faceset_b, model_dir, **kw) -> TrainConfig:
    base = dict(
        faceset_a=str(faceset_a), faceset_b=str(faceset_b), model_dir=str(model_dir),
        arch="lite", batch=2, preview_every=0, log_every=1, workers=0, device="cpu", seed=3,
        save_minutes=0,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def train_args(faceset_a, faceset_b, model_dir, *extra: str) -> list[str]:
    return ["train", "-q", "-A", str(faceset_a), "-B", str(faceset_b), "-m", str(model_dir),
            "--arch", "lite", "--batch", "2", "--device", "cpu", "--seed", "3",
            *extra]  # fmt: skip


def one_line(err: str) -> str:
    """The single stderr line of a failed command (and no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("facetwin: ")
    return lines[0]


# Children: the library or the CLI with batches slowed down, so a test can act between steps.
SLOW = """
import json, sys, time
import facetwin.train.data as data

slow_down = data.PairDataset.__getitem__
def getitem(self, i):
    time.sleep(float(sys.argv[1]))
    return slow_down(self, i)
data.PairDataset.__getitem__ = getitem
"""
API_CHILD = (
    SLOW
    + """
from facetwin.train import TrainConfig, train
train(TrainConfig(**json.loads(sys.argv[2])), progress=False)
"""
)
CLI_CHILD = (
    SLOW
    + """
from facetwin.cli import main
sys.exit(main(sys.argv[2:]))
"""
)


def wait_for(check, proc: subprocess.Popen, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert proc.poll() is None, f"child exited ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} in {seconds} s"
        time.sleep(0.02)


def curve(model_dir: Path) -> list[tuple[int, float, float]]:
    return [(r["iteration"], r["loss_a"], r["loss_b"]) for r in read_loss_log(model_dir)]


# -- snapshots by time -------------------------------------------------------------------------
def test_a_time_snapshot_does_not_change_the_run(tmp_path, faceset_woman, faceset_man):
    """A snapshot after every step (by time) gives the weights of a run that saved only at the
    end: saving draws no random number and changes no state."""
    by_time = train(lite_cfg(faceset_woman, faceset_man, tmp_path / "t", iterations=4,
                             save_every=1000, save_minutes=1e-9), progress=False)  # fmt: skip
    plain = train(lite_cfg(faceset_woman, faceset_man, tmp_path / "p", iterations=4,
                           save_every=1000), progress=False)  # fmt: skip
    assert by_time.digest == plain.digest
    assert curve(tmp_path / "t") == curve(tmp_path / "p")
    # Time snapshots 1, 2, 3 each gave way to the next; 4 is the newest (time, before the stop).
    assert [s.name for s in list_snapshots(tmp_path / "t")] == ["it-00000004"]
    assert [s.name for s in list_snapshots(tmp_path / "p")] == ["it-00000004"]
    assert snapshot_reason(list_snapshots(tmp_path / "p")[0]) == "stop"


@pytest.mark.slow
def test_kill9_resumes_from_a_time_snapshot_exactly(tmp_path, faceset_woman, faceset_man):
    """save_every far away, save_minutes a fraction of a second: kill -9 loses at most that
    much, and the resumed run is bit-identical to one that never stopped."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the child (ENV): another thread count sums in another order
    try:
        _kill9_then_resume(tmp_path, faceset_woman, faceset_man)
    finally:
        torch.set_num_threads(threads)


def _kill9_then_resume(tmp_path, faceset_woman, faceset_man):
    total = 14
    cfg = lite_cfg(faceset_woman, faceset_man, tmp_path / "killed", iterations=total,
                   save_every=1000, save_minutes=0.005)  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", API_CHILD, "0.1", json.dumps(asdict(cfg))], env=ENV
    )
    model = tmp_path / "killed"

    def snapshot_past_4() -> bool:
        return any(int(s.name[3:]) >= 4 for s in list_snapshots(model))

    try:
        wait_for(snapshot_past_4, proc, "time snapshot at iteration >= 4")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    snaps = list_snapshots(model)
    assert snaps and all(snapshot_reason(s) == "time" for s in snaps)
    # the newest time snapshot replaces the one before (two only when the kill lands between
    # writing the new one and pruning the old)
    assert len(snaps) <= 2
    done_before = int(snaps[-1].name[3:])
    assert 4 <= done_before < total

    resumed = train(TrainConfig(model_dir=str(model)), progress=False)
    assert resumed.start_iteration == done_before and resumed.iterations == total
    ref = train(lite_cfg(faceset_woman, faceset_man, tmp_path / "ref", iterations=total,
                         save_every=1000), progress=False)  # fmt: skip
    assert curve(model) == curve(tmp_path / "ref")
    assert [c[0] for c in curve(model)] == list(range(1, total + 1))
    assert resumed.digest == ref.digest


def fake_snapshot(model_dir: Path, iteration: int, reason: str | None) -> None:
    snap = model_dir / "snapshots" / ckpt.snapshot_name(iteration)
    snap.mkdir(parents=True)
    doc = {"format": FORMAT, "iteration": iteration}
    if reason is not None:
        doc["reason"] = reason
    (snap / STATE_FILE).write_text(json.dumps(doc))


def test_pruning_keeps_interval_snapshots_and_the_newest(tmp_path):
    """Time and stop snapshots never push the interval ones out; only the newest of all of
    them stays beside the newest ``keep`` interval ones. Snapshots without a reason (written
    before there were time snapshots) count as interval ones."""
    for it, reason in [(500, None), (700, "time"), (1000, "interval"), (1100, "stop"),
                       (1300, "time"), (1500, "interval"), (1600, "time"),
                       (1700, "time")]:  # fmt: skip
        fake_snapshot(tmp_path, it, reason)
    gone = prune(tmp_path, keep=2)
    assert [s.name for s in list_snapshots(tmp_path)] == [
        "it-00001000",
        "it-00001500",
        "it-00001700",
    ]
    assert len(gone) == 5
    prune(tmp_path, keep=1)
    assert [s.name for s in list_snapshots(tmp_path)] == ["it-00001500", "it-00001700"]


def test_leftovers_are_removed_only_by_the_lock_holder(tmp_path, faceset_woman, faceset_man):
    """An interrupted write's temporary folder goes when the next run takes the folder; a save
    never removes another process's temporary folder."""
    model = tmp_path / "m"
    (model / "snapshots" / ".tmp-it-00000007-99999").mkdir(parents=True)
    (model / ".tmp-abc").write_text("half a config")
    assert len(remove_partial(model)) == 2
    assert not list(model.glob(".tmp-*")) and not list((model / "snapshots").glob(".tmp-*"))

    other = model / "snapshots" / ".tmp-it-00000001-99999"  # "another run's" live folder
    other.mkdir()
    net = lite_model()
    opt = make_optimizer(net, lite_cfg(faceset_woman, faceset_man, model), torch.device("cpu"))
    ckpt.save_snapshot(model, 1, net, opt, {"arch": "lite"}, keep=2)
    assert other.is_dir()


# -- disk full while writing a snapshot ------------------------------------------------------
FAULTS = {
    "ENOSPC": lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
    "EDQUOT": lambda: OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)),
    "safetensors": lambda: SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28)"
    ),
    "EACCES": lambda: PermissionError(errno.EACCES, os.strerror(errno.EACCES)),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failed_snapshot_write_is_one_line_and_resumes(tmp_path, faceset_woman, faceset_man,
                                                         monkeypatch, capsys, fault):  # fmt: skip
    """The writer fails half-way through the second snapshot's optimizer file (bytes on disk,
    then the error): exit 5 with one line, no temporary folder, the first snapshot intact, and
    the same command finishes the run once the cause is gone - with the weights of a run that
    never failed."""
    real_save = ckpt.st_save_file
    calls = {"n": 0}

    def failing_save(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == 4:  # snapshot 2: model.safetensors (3) went in, optimizer (4) fails
            with open(filename, "wb") as f:
                f.write(b"\0" * 4096)
            raise FAULTS[fault]()
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(ckpt, "st_save_file", failing_save)
    model = tmp_path / "m"
    args = train_args(faceset_woman, faceset_man, model, "--iterations", "4", "--save-every", "2")
    assert main(args) == 5
    line = one_line(capsys.readouterr().err)
    assert "cannot write snapshot" in line and "it-00000002 is kept" in line
    if fault == "EACCES":
        assert "Permission denied" in line
    else:
        assert "disk full" in line
    assert [s.name for s in list_snapshots(model)] == ["it-00000002"]
    assert not list((model / "snapshots").glob(".tmp-*"))
    ckpt.load_snapshot(list_snapshots(model)[0], lite_model(), "lite")  # checksums hold

    monkeypatch.setattr(ckpt, "st_save_file", real_save)  # space freed
    assert main(args) == 0
    capsys.readouterr()
    assert [s.name for s in list_snapshots(model)] == ["it-00000002", "it-00000004"]
    if fault == "ENOSPC":  # once is enough for the exactness of the resumed run
        ref = train(lite_cfg(faceset_woman, faceset_man, tmp_path / "ref", iterations=4,
                             save_every=2), progress=False)  # fmt: skip
        assert weights_digest(load_model(model, device="cpu")[0]) == ref.digest
        assert curve(model)[-1] == curve(tmp_path / "ref")[-1]  # iteration 4's losses


def lite_model() -> torch.nn.Module:
    return build_model("lite")


def _can_mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=240m", "tmpfs", str(where)],
                       capture_output=True)  # fmt: skip
    return r.returncode == 0


@pytest.mark.slow
def test_a_really_full_disk_while_training(tmp_path, faceset_woman, faceset_man):
    """The same on a real 240 MB tmpfs (needs root and mount; skipped otherwise): the disk
    fills while the second snapshot is written."""
    disk = tmp_path / "disk"
    if not _can_mount_tmpfs(disk):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        model = disk / "m"
        args = [sys.executable, "-m", "facetwin.cli",
                *train_args(faceset_woman, faceset_man, model, "--save-every", "2")]  # fmt: skip
        first = subprocess.run([*args, "--iterations", "2"], env=ENV, capture_output=True,
                               text=True, timeout=300)  # fmt: skip
        assert first.returncode == 0, first.stderr
        snap_bytes = sum(f.stat().st_size for f in list_snapshots(model)[0].iterdir())
        st = os.statvfs(disk)
        free = st.f_bavail * st.f_frsize
        assert free > snap_bytes // 2, "tmpfs too small for this test"
        with open(disk / "filler", "wb") as f:  # leave half a snapshot's room
            os.posix_fallocate(f.fileno(), 0, free - snap_bytes // 2)
        full = subprocess.run([*args, "--iterations", "4"], env=ENV, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert full.returncode == 5, full.stderr
        line = one_line(full.stderr)
        assert "disk full" in line and "it-00000002 is kept" in line
        assert [s.name for s in list_snapshots(model)] == ["it-00000002"]
        assert not list((model / "snapshots").glob(".tmp-*"))

        (disk / "filler").unlink()
        again = subprocess.run([*args, "--iterations", "4"], env=ENV, capture_output=True,
                               text=True, timeout=300)  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert [s.name for s in list_snapshots(model)] == ["it-00000002", "it-00000004"]
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# -- model folders that cannot be made -----------------------------------------------------------
def test_a_model_folder_that_cannot_be_created_is_exit_5(tmp_path, faceset_woman, faceset_man,
                                                         capsys):  # fmt: skip
    for model in ["/proc/facetwin-no/m", "/proc/m"]:  # not creatable, not even by root
        assert main(train_args(faceset_woman, faceset_man, model, "--iterations", "1")) == 5
        assert "cannot create model folder" in one_line(capsys.readouterr().err)
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    assert main(train_args(faceset_woman, faceset_man, a_file, "--iterations", "1")) == 5
    assert "is a file" in one_line(capsys.readouterr().err)
    if os.geteuid() != 0:  # root writes into a 0o500 folder anyway
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        try:
            rc = main(train_args(faceset_woman, faceset_man, ro / "m", "--iterations", "1"))
            assert rc == 5
            assert "Permission denied" in one_line(capsys.readouterr().err)
        finally:
            ro.chmod(0o700)


# -- one run per model folder ----------------------------------------------------------------
@pytest.mark.slow
def test_a_second_run_on_one_model_folder_is_busy(tmp_path, faceset_woman, faceset_man, capsys):
    """While a run trains (a snapshot every other step: its temporary folders come and go), a
    second one gets exit 7 and one line naming the first's process; the first is unharmed."""
    model = tmp_path / "m"
    cfg = lite_cfg(faceset_woman, faceset_man, model, iterations=12, save_every=2)
    proc = subprocess.Popen(
        [sys.executable, "-c", API_CHILD, "0.05", json.dumps(asdict(cfg))],
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(list_snapshots(model)) >= 1, proc, "first snapshot")
        assert main(train_args(faceset_woman, faceset_man, model, "--iterations", "12")) == 7
        line = one_line(capsys.readouterr().err)
        assert f"model folder {model} is in use by process {proc.pid}" in line
        with pytest.raises(BusyError, match="in use by process"):
            train(TrainConfig(model_dir=str(model)), progress=False)
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert [c[0] for c in curve(model)] == list(range(1, 13))
    assert [s.name for s in list_snapshots(model)] == [f"it-{i:08d}" for i in (8, 10, 12)]


HOLD_LOCK = """
import sys, time
from facetwin.lock import exclusive
with exclusive(sys.argv[1], "model folder"):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path, faceset_woman, faceset_man):
    model = tmp_path / "m"
    model.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(model)], env=ENV,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        cfg = lite_cfg(faceset_woman, faceset_man, model, iterations=1)
        with pytest.raises(BusyError, match=f"in use by process {proc.pid}"):
            train(cfg, progress=False)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    result = train(cfg, progress=False)  # the kernel dropped the killed process's lock
    assert result.iterations == 1 and list_snapshots(model)


# -- bad inputs: one line, nothing written ------------------------------------------------------
def test_the_same_face_set_twice_is_a_usage_error(tmp_path, faceset_woman, capsys):
    link = tmp_path / "link"
    link.symlink_to(faceset_woman)
    spellings = [
        faceset_woman,
        faceset_woman.parent / "." / faceset_woman.name,
        faceset_woman / ".." / faceset_woman.name,
        link,
    ]
    for other in spellings:
        model = tmp_path / "m"
        assert main(train_args(faceset_woman, other, model, "--iterations", "1")) == 2
        assert "face sets A and B are the same folder" in one_line(capsys.readouterr().err)
        assert not model.exists()


def test_a_failed_new_run_leaves_nothing(tmp_path, faceset_woman, faceset_man, capsys):
    """A bad face set path fails before anything is written; a face set that opens but holds no
    face fails after the folder was made and locked, and the folder goes again."""
    model = tmp_path / "new" / "m"
    assert main(train_args(faceset_woman, tmp_path / "nope", model, "--iterations", "1")) == 3
    assert "is not a face set" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "new").exists()

    empty = tmp_path / "empty"
    FaceSet.create(empty, {"size": 256, "coverage": 2.0}).close()
    assert main(train_args(faceset_woman, empty, model, "--iterations", "1")) == 4
    assert "holds no faces" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "new").exists()


def test_a_failed_resume_keeps_the_saved_config(tmp_path, faceset_woman, faceset_man, capsys):
    model = tmp_path / "m"
    train(lite_cfg(faceset_woman, faceset_man, model, iterations=1), progress=False)
    saved = (model / "config.json").read_text()
    rc = main(["train", "-q", "-m", str(model), "-B", str(tmp_path / "gone"), "--iterations", "2"])
    assert rc == 3
    assert "is not a face set" in one_line(capsys.readouterr().err)
    assert (model / "config.json").read_text() == saved
    assert [s.name for s in list_snapshots(model)] == ["it-00000001"]


# -- Ctrl-C --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ctrl_c_in_train_prints_one_line(tmp_path, faceset_woman, faceset_man):
    model = tmp_path / "m"
    args = train_args(faceset_woman, faceset_man, model, "--iterations", "100000")
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_CHILD, "0.05", *args],
        env=ENV,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log_path = model / "loss.jsonl"
    wait_for(lambda: log_path.is_file() and log_path.stat().st_size > 0, proc, "a loss line")
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted" in one_line(err) and out == ""
    snaps = list_snapshots(model)
    assert len(snaps) == 1 and snapshot_reason(snaps[0]) == "stop"
    assert read_loss_log(model)[-1]["iteration"] <= int(snaps[0].name[3:])
