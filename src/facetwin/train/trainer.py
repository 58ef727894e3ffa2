"""``facetwin train``: the training loop behind the CLI, as a Python API.

One step: A' = Dec_A(Enc(warp(A))), B' = Dec_B(Enc(warp(B))), loss against the un-warped
targets, one Adam step over everything (the shared encoder gets both identities' gradients).
The architecture names its step (:data:`facetwin.train.step.STEPS`: the plain one above, or the
GAN's); this loop only drives the :class:`~facetwin.train.step.Step` contract.

Resuming is exact. A run is fully described by its config (saved as ``config.json``), the
newest snapshot (weights, Adam state, iteration, RNG states) and the data, which is a pure
function of (seed, iteration); so ``train(TrainConfig(model_dir=...))`` after a crash, Ctrl-C or
``kill -9`` produces the same losses, iteration for iteration, as a run that never stopped.

Nothing is lost: a snapshot is written every ``save_every`` iterations, at least every
``save_minutes`` minutes (between two steps, so the result does not depend on when), and at every
clean stop (the target reached, ``minutes`` up, Ctrl-C). One run at a time holds the model
folder (:func:`facetwin.lock.exclusive`); the inputs are checked before anything is written, and
a new model folder that a failed run created is removed again.

The loop's parts live beside it: the model folder (:mod:`~facetwin.train.run_folder`), the data
(:mod:`~facetwin.train.run_data`), snapshots and their policy
(:mod:`~facetwin.train.run_snapshots`), the loss log and meter (:mod:`~facetwin.train.run_log`),
and the time budget and Ctrl-C (:mod:`~facetwin.train.run_control`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from facetwin.device import resolve_device
from facetwin.errors import FacetwinError
from facetwin.faceset import encode_png
from facetwin.media.files import atomic_write_bytes
from facetwin.train import ddp
from facetwin.train.config import (
    CONFIG_FILE,
    LOSS_LOG,
    MAX_BAD_STEPS,
    PREVIEW_FILE,
    TrainConfig,
    TrainResult,
    check_facesets,
    read_saved_config,
    resolve_config,
)
from facetwin.train.models import build_model
from facetwin.train.preview import preview_grid, read_loss_log, truncate_log
from facetwin.train.run_control import InterruptLatch, TimeBudget, should_stop
from facetwin.train.run_data import load_run_data
from facetwin.train.run_folder import hold_model_dir
from facetwin.train.run_log import LossLog, Meter, bar_postfix, log_line
from facetwin.train.run_snapshots import RunSnapshots
from facetwin.train.step import (
    STEPS,
    Step,
    StepContext,
    StepOutput,
    TrainStep,
    choose_precision,
)

log = logging.getLogger(__name__)


def make_optimizer(
    model: nn.Module, cfg: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """Adam; the fused kernel on CPU and CUDA (one pass over the 82 M parameters, not six)."""
    fused = True if device.type in ("cpu", "cuda") else None
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, fused=fused)


def train(cfg: TrainConfig, progress: bool = True) -> TrainResult:
    """Train (or resume) the model in ``cfg.model_dir``; see :class:`TrainConfig`.

    Ctrl-C finishes the current step, saves a snapshot and re-raises KeyboardInterrupt, which
    the CLI turns into a clean exit.
    """

    cfg = resolve_config(cfg)
    if read_saved_config(Path(cfg.model_dir)) is None:
        check_facesets(cfg)  # a new run: nothing is written before its inputs are known good
    dist = ddp.setup(torch.device(resolve_device(cfg.device)).type)
    try:
        with hold_model_dir(Path(cfg.model_dir), dist.main):
            return _Run(cfg, dist, progress).run()
    finally:
        ddp.teardown(dist)


def _device(cfg: TrainConfig, dist: ddp.DistInfo) -> torch.device:
    """The configured device; under torchrun on CUDA, this rank's own GPU (LOCAL_RANK)."""
    device = torch.device(resolve_device(cfg.device))
    if device.type == "cuda" and dist.enabled:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    return device


class _Run:
    """State of one training session (split from :func:`train` to keep each piece small)."""

    def __init__(self, cfg: TrainConfig, dist: ddp.DistInfo, progress: bool) -> None:
        assert cfg.arch is not None and cfg.coverage is not None
        self.cfg = cfg
        self.arch: str = cfg.arch
        self.dist = dist
        self.progress = progress and dist.main
        self.dir = Path(cfg.model_dir)
        self.device = _device(cfg, dist)
        self.precision = choose_precision(cfg.amp, self.device)
        self.channels_last = (
            cfg.channels_last if cfg.channels_last is not None else self.device.type == "cuda"
        )
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank and every run
        self.model = build_model(self.arch).to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.optimizer = make_optimizer(self.model, cfg, self.device)
        self.step: Step = self._make_step()
        self.snaps = RunSnapshots(self.dir, cfg, dist, self.model, self.optimizer, self.step)
        self.iteration = 0
        self.identities: dict[str, Any] = {}
        self.losses: tuple[float, float] | None = None

    def _make_step(self) -> Step:
        """The architecture names its training step; the trainer only drives the contract."""
        ctx = StepContext(
            self.model,
            self.optimizer,
            self.device,
            self.precision,
            self.channels_last,
            self.dist,
            loss=self.cfg.loss,
            emphasis=self.cfg.emphasis,
            betas=self.cfg.betas,
            extra=self.cfg.gan,  # the GAN family's settings; the plain step has none
        )
        return STEPS.get(self.model.step_kind)(ctx)

    # -- persistence ---------------------------------------------------------------------------
    def write_config(self) -> None:
        text = json.dumps(self.cfg.to_json(), indent=1)
        atomic_write_bytes(self.dir / CONFIG_FILE, text.encode())

    def restore(self) -> Path | None:
        snap, self.iteration = self.snaps.restore()
        if snap is not None:
            log.info("resuming %s from iteration %d", self.dir, self.iteration)
        return snap

    def save(self, reason: str = "stop") -> Path | None:
        """A snapshot of this iteration (see :meth:`RunSnapshots.save`)."""
        return self.snaps.save(self.iteration, self.identities, self.losses, reason)

    def rollback(self) -> None:
        """After a non-finite loss: back to the newest snapshot's weights and Adam state.

        The iteration counter keeps going, so the batch that blew up is not replayed.
        """
        snap = self.snaps.rollback(self.iteration)
        if snap is None:
            log.warning(
                "non-finite loss at iteration %d; no snapshot yet, skipped the batch",
                self.iteration,
            )
            return
        log.warning(
            "non-finite loss at iteration %d; skipped it and rolled back to %s",
            self.iteration,
            snap.name,
        )

    def write_preview(self, faces: dict[str, torch.Tensor]) -> None:
        title = (
            f"SYNTHETIC - facetwin {self.arch} it {self.iteration} - rows A, A>A, A>B, B, B>B, B>A"
        )
        grid = preview_grid(
            self.model, faces, self.device, self.precision, self.channels_last, title
        )
        atomic_write_bytes(self.dir / PREVIEW_FILE, encode_png(grid))

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Restore, load the face sets, then (only then) write the config and train."""
        cfg = self.cfg
        snap = self.restore()
        start = self.iteration
        t_start = time.perf_counter()
        if cfg.iterations is not None and start >= cfg.iterations:
            if self.dist.main:
                self.write_config()
            return self.result(start, 0.0, 0.0, 0, "done", snap)
        data = load_run_data(cfg, self.dist, self.device, start)
        self.identities.update(data.identities)
        if self.dist.main:
            self.write_config()
            truncate_log(self.dir / LOSS_LOG, start)
        ddp.barrier(self.dist)
        self.snaps.saved_time = time.monotonic()
        return self.loop(data.loader, data.preview, start, t_start)

    def loop(
        self, loader: Any, preview: dict[str, torch.Tensor], start: int, t_start: float
    ) -> TrainResult:
        cfg = self.cfg
        meter = Meter(per_step=2 * cfg.batch * self.dist.world, t_start=t_start)
        budget = TimeBudget.start(cfg.minutes, t_start)
        bad_run = skipped = 0
        stopped = "iterations"
        bar = tqdm(total=cfg.iterations, initial=start, unit="it", disable=not self.progress,
                   dynamic_ncols=True, smoothing=0.05, desc=f"train {self.arch}")  # fmt: skip
        loss_log = LossLog(self.dir / LOSS_LOG) if self.dist.main else None
        batches = iter(loader)
        latch = InterruptLatch()
        try:
            with latch:
                while cfg.iterations is None or self.iteration < cfg.iterations:
                    if should_stop(self.dist, self.device, budget, latch):
                        stopped = "minutes"
                        break
                    out = self.next_step(batches, meter)
                    if not out.finite:
                        skipped, bad_run = skipped + 1, bad_run + 1
                        self.bad_step(bad_run)
                        continue
                    bad_run = 0
                    self.after_step(out, meter, loss_log, bar, budget, preview)
        except KeyboardInterrupt:
            if latch.count <= 1:  # a second Ctrl-C may have cut a step: do not save that
                snap = self.save()
                if snap is not None:  # the CLI's one line says so; this is for -v
                    log.info("interrupted: saved %s", snap)
            raise
        finally:
            bar.close()
            if loss_log is not None:
                loss_log.close()
            del batches  # stops the loader's workers now, not at garbage collection
        return self.finish(start, meter, skipped, stopped, preview)

    def next_step(self, batches: Iterator[dict[str, Any]], meter: Meter) -> StepOutput:
        """One iteration: the next batch (it must be this iteration's), the rate, the step."""
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        if batch["iteration"] != self.iteration:
            raise RuntimeError(
                f"loader gave iteration {batch['iteration']}, expected {self.iteration}"
            )
        self.set_lr()
        out = self.step(batch)
        meter.add(t0, t1, time.perf_counter())
        self.iteration += 1
        return out

    def bad_step(self, bad_run: int) -> None:
        """After a non-finite loss: roll back, or give up after too many in a row."""
        if bad_run >= MAX_BAD_STEPS:
            raise FacetwinError(
                f"loss was NaN/inf for {bad_run} iterations in a row; "
                "lower --lr or check the face sets"
            )
        self.rollback()

    def after_step(
        self,
        out: StepOutput,
        meter: Meter,
        loss_log: LossLog | None,
        bar: tqdm,
        budget: TimeBudget,
        preview: dict[str, torch.Tensor],
    ) -> None:
        """After an applied step: the losses, the log line when due, the bar, snapshots."""
        self.losses = (out.loss_a, out.loss_b)
        if self.iteration % self.cfg.log_every == 0 or self.iteration == self.cfg.iterations:
            self.log_step(out, meter, loss_log, bar, budget)
        bar.update(1)
        self.periodic(preview)

    def set_lr(self) -> None:
        """The schedule's rate for this iteration (a pure function of it: resumes exactly)."""
        cfg = self.cfg
        lr = cfg.lr * cfg.schedule.factor(self.iteration, cfg.iterations)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def log_step(
        self, out: StepOutput, meter: Meter, loss_log: LossLog | None, bar: tqdm, budget: TimeBudget
    ) -> None:
        """One loss-log line (rank 0) and the progress bar's numbers."""
        now = time.perf_counter()
        rate = meter.window_rate(now)
        if loss_log is not None:
            lr = self.optimizer.param_groups[0]["lr"]
            loss_log.write(log_line(self.iteration, now - meter.t_start, out, rate, lr))
        bar.set_postfix(bar_postfix(out, rate, budget.left_minutes(now)), refresh=False)

    def periodic(self, preview: dict[str, torch.Tensor]) -> None:
        """Snapshot and preview when their intervals come round (see :mod:`run_snapshots`)."""
        reason = self.snaps.due(self.iteration)
        if reason is not None:
            self.save(reason)
        every = self.cfg.preview_every
        if self.dist.main and every and self.iteration % every == 0:
            self.write_preview(preview)

    def finish(
        self, start: int, meter: Meter, skipped: int, stopped: str, preview: dict[str, torch.Tensor]
    ) -> TrainResult:
        """A clean stop: the last snapshot and preview, then every rank reports together."""
        snap = self.save()
        if self.dist.main and self.cfg.preview_every:
            self.write_preview(preview)
        ddp.barrier(self.dist)
        return self.result(start, meter.wait, meter.busy, skipped, stopped, snap)

    def result(
        self, start: int, wait: float, busy: float, skipped: int, stopped: str, snap: Path | None
    ) -> TrainResult:
        total = wait + busy
        done = self.iteration - start
        return TrainResult(
            model_dir=str(self.dir),
            arch=self.arch,
            start_iteration=start,
            iterations=self.iteration,
            loss_a=None if self.losses is None else self.losses[0],
            loss_b=None if self.losses is None else self.losses[1],
            seconds=round(total, 3),
            samples_per_s=round(2 * self.cfg.batch * self.dist.world * done / total, 2)
            if total > 0
            else 0.0,
            data_wait_share=round(wait / total, 4) if total > 0 else 0.0,
            stopped=stopped,
            snapshot=None if snap is None else str(snap),
            skipped_steps=skipped,
            digest=weights_digest(self.model),
        )


def weights_digest(model: nn.Module) -> str:
    """sha256 of all parameters in state_dict order: equal digests mean bit-identical weights."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainStep",
    "choose_precision",
    "make_optimizer",
    "read_loss_log",
    "resolve_config",
    "train",
    "weights_digest",
]
