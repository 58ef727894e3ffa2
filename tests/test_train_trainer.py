"""The training loop: it learns, it resumes exactly after kill -9, it survives a NaN."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import cv2
import pytest

from facetwin.errors import UsageError
from facetwin.train import TrainConfig, read_loss_log, train
from facetwin.train import gan as gan_mod
from facetwin.train import step as step_mod
from facetwin.train.checkpoint import list_snapshots
from facetwin.train.gan import GanLossConfig


def lite_cfg(faceset_a, faceset_b, model_dir, **kw) -> TrainConfig:
    base = dict(
        faceset_a=str(faceset_a), faceset_b=str(faceset_b), model_dir=str(model_dir),
        arch="lite", batch=4, preview_every=0, log_every=1, workers=0, device="cpu", seed=11,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def test_short_training_lowers_the_loss(tmp_path, faceset_woman, faceset_man):
    cfg = lite_cfg(faceset_woman, faceset_man, tmp_path / "m", iterations=100, batch=8,
                   lr=2e-4, workers=2, preview_every=50, save_every=50)  # fmt: skip
    result = train(cfg, progress=False)
    assert result.iterations == 100 and result.stopped == "iterations"
    assert result.skipped_steps == 0 and 0 <= result.data_wait_share < 1
    logged = read_loss_log(tmp_path / "m")
    assert [r["iteration"] for r in logged] == list(range(1, 101))
    assert {"time", "loss_a", "loss_b", "samples_per_s"} <= set(logged[0])
    first = sum(r["loss_a"] + r["loss_b"] for r in logged[:10]) / 10
    last = sum(r["loss_a"] + r["loss_b"] for r in logged[-10:]) / 10
    assert last < 0.85 * first, (first, last)
    preview = cv2.imread(str(tmp_path / "m" / "preview.png"))
    assert preview.shape == (22 + 6 * 128, 4 * 128, 3)
    assert [s.name for s in list_snapshots(tmp_path / "m")] == ["it-00000050", "it-00000100"]


CHILD = """
import json, sys, time
import facetwin.train.data as data

slow_down = data.PairDataset.__getitem__
def getitem(self, i):  # slower batches give the test time to kill between two snapshots
    time.sleep(0.15)
    return slow_down(self, i)
data.PairDataset.__getitem__ = getitem

from facetwin.train import TrainConfig, train
train(TrainConfig(**json.loads(sys.argv[1])), progress=False)
"""


@pytest.mark.slow
def test_resume_after_kill9_matches_an_uninterrupted_run(tmp_path, faceset_woman, faceset_man):
    total = 24
    killed = lite_cfg(faceset_woman, faceset_man, tmp_path / "killed", iterations=total,
                      save_every=6)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(asdict(killed))])
    snaps = tmp_path / "killed" / "snapshots"
    deadline = time.monotonic() + 240
    while not (snaps / "it-00000012").is_dir():
        assert proc.poll() is None, "training child died early"
        assert time.monotonic() < deadline, "no snapshot at iteration 12 in time"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = max(int(s.name[3:]) for s in list_snapshots(tmp_path / "killed"))
    assert 12 <= done_before < total
    logged_before = read_loss_log(tmp_path / "killed")
    assert logged_before and logged_before[-1]["iteration"] >= 12

    resumed = train(TrainConfig(model_dir=str(tmp_path / "killed")), progress=False)
    assert resumed.start_iteration == done_before and resumed.iterations == total

    # Reference: one uninterrupted run, two loader workers (the data must not depend on them).
    ref_cfg = lite_cfg(faceset_woman, faceset_man, tmp_path / "ref", iterations=total,
                       save_every=6, workers=2)  # fmt: skip
    reference = train(ref_cfg, progress=False)
    curve = [(r["iteration"], r["loss_a"], r["loss_b"]) for r in read_loss_log(tmp_path / "killed")]
    ref_curve = [
        (r["iteration"], r["loss_a"], r["loss_b"]) for r in read_loss_log(tmp_path / "ref")
    ]
    assert [c[0] for c in curve] == list(range(1, total + 1))
    assert curve == ref_curve
    assert resumed.digest == reference.digest


@pytest.mark.slow
def test_ctrl_c_saves_then_reraises(tmp_path, faceset_woman, faceset_man):
    """Ctrl-C reaches the whole process group (trainer and loader workers), as from a terminal:
    the step in flight finishes, a snapshot is saved and KeyboardInterrupt propagates."""
    cfg = lite_cfg(faceset_woman, faceset_man, tmp_path / "m", iterations=500, save_every=1000,
                   workers=2)  # fmt: skip
    code = CHILD.replace("time.sleep(0.15)", "time.sleep(0.05)")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(asdict(cfg))],
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    log_path = tmp_path / "m" / "loss.jsonl"
    deadline = time.monotonic() + 120
    while not (log_path.is_file() and len(log_path.read_text().splitlines()) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    snaps = list_snapshots(tmp_path / "m")
    assert len(snaps) == 1
    stopped_at = int(snaps[0].name[3:])
    assert 3 <= stopped_at < 500
    assert read_loss_log(tmp_path / "m")[-1]["iteration"] == stopped_at


@pytest.mark.parametrize("arch", ["lite", "gan-lite"])
def test_nan_loss_is_skipped_and_rolled_back(tmp_path, faceset_woman, faceset_man, monkeypatch,
                                             caplog, arch):  # fmt: skip
    # the plain step computes 2 losses per step, the GAN step 4 (recon and self_recon per side)
    module, bad_call = (step_mod, 10) if arch == "lite" else (gan_mod, 20)
    real = module.compute_loss
    calls = itertools.count()

    def poisoned(*args):
        loss = real(*args)
        return loss * float("nan") if next(calls) == bad_call else loss  # step 6, side A

    monkeypatch.setattr(module, "compute_loss", poisoned)
    cfg = lite_cfg(faceset_woman, faceset_man, tmp_path / "m", iterations=8, save_every=3,
                   arch=arch, gan=GanLossConfig(identity=0))  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="facetwin.train.trainer"):
        result = train(cfg, progress=False)
    assert result.skipped_steps == 1 and result.iterations == 8
    assert "non-finite loss at iteration 6" in caplog.text
    assert "rolled back to it-00000003" in caplog.text
    assert 6 not in [r["iteration"] for r in read_loss_log(tmp_path / "m")]


def test_time_limit_and_bf16_autocast_on_cpu(tmp_path, faceset_woman, faceset_man):
    cfg = lite_cfg(faceset_woman, faceset_man, tmp_path / "m", minutes=0.1, amp="bf16",
                   save_every=1000)  # fmt: skip
    result = train(cfg, progress=False)
    assert result.stopped == "minutes" and result.iterations >= 1
    assert result.loss_a is not None and result.loss_a == result.loss_a  # finite, not NaN
    assert list_snapshots(tmp_path / "m")  # saved on the way out


def test_bad_configs_are_usage_errors(tmp_path, faceset_woman):
    with pytest.raises(UsageError, match="needs face sets A and B"):
        train(TrainConfig(model_dir=str(tmp_path / "new")), progress=False)
    with pytest.raises(UsageError, match="--amp"):
        train(lite_cfg(faceset_woman, faceset_woman, tmp_path / "x", amp="fp8"), progress=False)
    with pytest.raises(UsageError, match="unknown architecture"):
        train(lite_cfg(faceset_woman, faceset_woman, tmp_path / "y", arch="huge"), progress=False)
    with pytest.raises(UsageError, match="unknown loss"):
        train(lite_cfg(faceset_woman, faceset_woman, tmp_path / "z", loss="l1+lpips"),
              progress=False)  # fmt: skip
