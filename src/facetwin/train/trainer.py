"""``facetwin train``: the training loop behind the CLI, as a Python API.

One step: A' = Dec_A(Enc(warp(A))), B' = Dec_B(Enc(warp(B))), loss against the un-warped
targets, one Adam step over everything (the shared encoder gets both identities' gradients).

Resuming is exact. A run is fully described by its config (saved as ``config.json``), the
newest snapshot (weights, Adam state, iteration, RNG states) and the data, which is a pure
function of (seed, iteration); so ``train(TrainConfig(model_dir=...))`` after a crash, Ctrl-C or
``kill -9`` produces the same losses, iteration for iteration, as a run that never stopped.

Nothing is lost: a snapshot is written every ``save_every`` iterations, at least every
``save_minutes`` minutes (between two steps, so the result does not depend on when), and at every
clean stop (the target reached, ``minutes`` up, Ctrl-C). One run at a time holds the model
folder (:func:`facetwin.lock.exclusive`); the inputs are checked before anything is written, and
a new model folder that a failed run created is removed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from facetwin.device import resolve_device
from facetwin.errors import (
    FacetwinError,
    OutputError,
    UsageError,
)
from facetwin.faceset import FaceSet, encode_png
from facetwin.lock import exclusive
from facetwin.media.files import atomic_write_bytes, make_folder
from facetwin.train import checkpoint as ckpt
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
from facetwin.train.data import FaceBank, PairDataset, load_bank, make_loader, preview_indices
from facetwin.train.models import arch_info, build_model
from facetwin.train.preview import preview_grid, read_loss_log, truncate_log
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


class _InterruptLatch:
    """Turns the first Ctrl-C into a flag the loop checks between steps.

    A KeyboardInterrupt in the middle of an optimizer step would leave some parameters updated
    and others not; that state must never be saved. A second Ctrl-C raises at once (no save).
    """

    def __init__(self) -> None:
        self.count = 0
        self._old: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt

    def __enter__(self) -> _InterruptLatch:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


# -- the run -----------------------------------------------------------------------------------
def _load_identity(
    path: str, size: int, coverage: float, mask: str, holdout: float = 0.0
) -> tuple[FaceBank, dict[str, Any]]:

    fs = FaceSet.open(path)
    try:
        bank = load_bank(fs, size, coverage, mask, holdout)
    finally:
        if hasattr(fs, "close"):
            fs.close()
    emb = bank.mean_embedding
    ident = {
        "faceset": str(Path(path).resolve()),
        "faces": len(bank),
        # of the faces trained on: held-out frames stay out of the identity reference too
        "mean_embedding": None if emb is None else [float(v) for v in emb],
        "holdout": bank.splits,
    }
    return bank, ident


def _device(cfg: TrainConfig, dist: ddp.DistInfo) -> torch.device:

    device = torch.device(resolve_device(cfg.device))
    if device.type == "cuda" and dist.enabled:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    return device


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
        with _hold_model_dir(Path(cfg.model_dir), dist.main):
            return _Run(cfg, dist, progress).run()
    finally:
        ddp.teardown(dist)


# What a run writes into its model folder; a new folder whose run failed before its first
# snapshot loses these again (and the folder, if that leaves it empty).
_RUN_FILES = (CONFIG_FILE, LOSS_LOG, PREVIEW_FILE, ".facetwin.lock")


@contextmanager
def _hold_model_dir(model_dir: Path, main: bool) -> Iterator[None]:
    """The model folder, created if needed and locked against other runs for the ``with``
    block (on rank 0: the only one that writes). Leftovers of interrupted writes are removed
    under the lock; if the folder is new and the run fails before its first snapshot, what
    the run wrote and the folders it created are removed again."""

    if not main:
        yield
        return
    if model_dir.exists() and not model_dir.is_dir():
        raise OutputError(f"model folder {model_dir} is a file, not a folder")
    created = [d for d in (model_dir, *model_dir.parents) if not d.exists()]
    make_folder(model_dir, "model folder")
    ok = False
    try:
        with exclusive(model_dir, f"model folder {model_dir}"):
            ckpt.remove_partial(model_dir)
            try:
                yield
                ok = True
            finally:
                if created and not ok and ckpt.latest_snapshot(model_dir) is None:
                    _remove_new_dir(model_dir, created)
    except BaseException:
        if created and not ok:  # e.g. the lock could not be taken: at least no empty folder
            _rmdirs(created)
        raise


def _remove_new_dir(model_dir: Path, created: list[Path]) -> None:
    """Undo a failed new run: its files, then every folder it created that is now empty."""
    for name in _RUN_FILES:
        (model_dir / name).unlink(missing_ok=True)
    _rmdirs([model_dir / ckpt.SNAPSHOTS, *created])


def _rmdirs(dirs: list[Path]) -> None:
    for d in dirs:  # innermost first
        with suppress(OSError):  # not empty (someone else's files) or already gone
            d.rmdir()


@dataclass
class _Meter:
    """Time split between waiting for batches and computing, plus a samples/s window."""

    per_step: int
    t_start: float
    wait: float = 0.0
    busy: float = 0.0
    window_steps: int = 0
    window_start: float | None = None

    def add(self, t0: float, t1: float, t2: float) -> None:
        if self.window_start is None:
            self.window_start = t0
        self.wait += t1 - t0
        self.busy += t2 - t1
        self.window_steps += 1

    def window_rate(self, now: float) -> float:
        """Samples/s since the previous call (the log interval), then start a new window."""
        start = self.window_start if self.window_start is not None else now
        rate = self.per_step * self.window_steps / max(now - start, 1e-9)
        self.window_start, self.window_steps = now, 0
        return rate


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
        # the architecture names its training step; the trainer only drives the Step contract
        ctx = StepContext(
            self.model,
            self.optimizer,
            self.device,
            self.precision,
            self.channels_last,
            self.dist,
            loss=cfg.loss,
            emphasis=cfg.emphasis,
            betas=cfg.betas,
            extra=cfg.gan,  # the GAN family's settings; the plain step has none
        )
        self.step: Step = STEPS.get(self.model.step_kind)(ctx)
        self.iteration = 0
        self.saved_at: int | None = None
        self.saved_time = time.monotonic()  # of the newest snapshot (or this session's start)
        self.identities: dict[str, Any] = {}
        self.losses: tuple[float, float] | None = None

    @property
    def scaler(self) -> Any:
        return self.step.scaler

    def load(self, snap: Path) -> dict[str, Any]:
        """Weights, optimizer state (and the GAN's discriminators) of ``snap``."""
        doc = ckpt.load_snapshot(snap, self.model, self.arch, self.optimizer)
        if self.step.aux_names:
            tensors = ckpt.read_aux(snap, doc, list(self.step.aux_names))
            meta = doc.get(self.model.step_kind, {})
            self.step.load_aux_state(tensors, meta, int(doc["iteration"]))
        return doc

    # -- persistence ---------------------------------------------------------------------------
    def write_config(self) -> None:

        text = json.dumps(self.cfg.to_json(), indent=1)
        atomic_write_bytes(self.dir / CONFIG_FILE, text.encode())

    def restore(self) -> Path | None:
        snap = ckpt.latest_snapshot(self.dir)
        if snap is None:
            return None
        doc = self.load(snap)
        self.iteration = self.saved_at = int(doc["iteration"])
        ckpt.set_rng_state(doc.get("rng", {}))
        if self.scaler is not None and doc.get("scaler"):
            self.scaler.load_state_dict(doc["scaler"])
        log.info("resuming %s from iteration %d", self.dir, self.iteration)
        return snap

    def save(self, reason: str = "stop") -> Path | None:
        """A snapshot of this iteration (rank 0 only; once per iteration). ``reason`` is one of
        :data:`checkpoint.REASONS`; it decides how pruning treats the snapshot later."""
        if not self.dist.main or self.saved_at == self.iteration:
            return ckpt.latest_snapshot(self.dir) if self.dist.main else None
        state: dict[str, Any] = {
            "reason": reason,
            "arch": self.arch,
            "config": self.cfg.to_json(),
            "identities": self.identities,
            "losses": None if self.losses is None else dict(zip("ab", self.losses)),
            # numpy needs no saved state for the data: batch i draws from a fresh PCG64 seeded
            # with SeedSequence([seed, rank, side, i]); recorded so a reader can regenerate it.
            "data_rng": {
                "bit_generator": "PCG64",
                "entropy": "[seed, rank, side, iteration]",
                "seed": self.cfg.seed,
                "next_iteration": self.iteration,
            },
            "time": time.time(),
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        aux, aux_meta = self.step.aux_state()
        if aux is not None:
            state[self.model.step_kind] = aux_meta  # "gan": the discriminators' optimizer etc.
        snap = ckpt.save_snapshot(
            self.dir, self.iteration, self.model, self.optimizer, state, self.cfg.keep, aux
        )
        self.saved_at = self.iteration
        self.saved_time = time.monotonic()
        return snap

    def rollback(self) -> None:
        """After a non-finite loss: back to the newest snapshot's weights and Adam state.

        The iteration counter keeps going, so the batch that blew up is not replayed.
        """
        snap = ckpt.latest_snapshot(self.dir)
        if snap is None:
            log.warning(
                "non-finite loss at iteration %d; no snapshot yet, skipped the batch",
                self.iteration,
            )
            return
        self.load(snap)
        self.step.resume_at(self.iteration)
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
        banks: dict[str, FaceBank] = {}
        info = arch_info(self.arch)
        for side, path in (("a", cfg.faceset_a), ("b", cfg.faceset_b)):
            if not path:
                raise UsageError(f"face set {side.upper()} is not set")
            banks[side], self.identities[side] = _load_identity(
                path, info.output_size, float(cfg.coverage or 1.0), cfg.mask, cfg.holdout
            )
        dataset = PairDataset(
            banks,
            cfg.batch,
            cfg.seed,
            cfg.augment,
            self.dist.rank,
            self.dist.world,
            input_size=info.input_size,
        )
        loader = make_loader(
            dataset, start, cfg.iterations, cfg.workers, pin_memory=self.device.type == "cuda"
        )
        preview = {
            s: torch.from_numpy(np.stack([b.plain(i) for i in preview_indices(len(b), 4)])).permute(
                0, 3, 1, 2
            )
            for s, b in banks.items()
        }
        if self.dist.main:
            self.write_config()
            truncate_log(self.dir / LOSS_LOG, start)
        ddp.barrier(self.dist)
        self.saved_time = time.monotonic()
        return self.loop(loader, preview, start, t_start)

    def loop(
        self, loader: Any, preview: dict[str, torch.Tensor], start: int, t_start: float
    ) -> TrainResult:
        cfg = self.cfg
        meter = _Meter(per_step=2 * cfg.batch * self.dist.world, t_start=t_start)
        deadline = None if cfg.minutes is None else t_start + cfg.minutes * 60
        bad_run = skipped = 0
        stopped = "iterations"
        bar = tqdm(total=cfg.iterations, initial=start, unit="it", disable=not self.progress,
                   dynamic_ncols=True, smoothing=0.05, desc=f"train {self.arch}")  # fmt: skip
        log_file = self.open_log() if self.dist.main else None
        batches = iter(loader)
        latch = _InterruptLatch()
        try:
            with latch:
                while cfg.iterations is None or self.iteration < cfg.iterations:
                    timeup, stop = ddp.any_flags(
                        self.dist,
                        self.device,
                        deadline is not None and time.perf_counter() >= deadline,
                        latch.count > 0,
                    )
                    if stop:
                        raise KeyboardInterrupt
                    if timeup:
                        stopped = "minutes"
                        break
                    out = self.next_step(batches, meter)
                    if not out.finite:
                        skipped, bad_run = skipped + 1, bad_run + 1
                        self.bad_step(bad_run)
                        continue
                    bad_run = 0
                    self.losses = (out.loss_a, out.loss_b)
                    if self.iteration % cfg.log_every == 0 or self.iteration == cfg.iterations:
                        self.log_step(out, meter, log_file, bar, deadline)
                    bar.update(1)
                    self.periodic(preview)
        except KeyboardInterrupt:
            if latch.count <= 1:  # a second Ctrl-C may have cut a step: do not save that
                snap = self.save()
                if snap is not None:  # the CLI's one line says so; this is for -v
                    log.info("interrupted: saved %s", snap)
            raise
        finally:
            bar.close()
            if log_file is not None:
                with suppress(OSError):  # flushed after every line; a full disk fails above
                    log_file.close()
            del batches  # stops the loader's workers now, not at garbage collection
        snap = self.save()
        if self.dist.main and cfg.preview_every:
            self.write_preview(preview)
        ddp.barrier(self.dist)
        return self.result(start, meter.wait, meter.busy, skipped, stopped, snap)

    def next_step(self, batches: Iterator[dict[str, Any]], meter: _Meter) -> StepOutput:
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

    def open_log(self) -> Any:
        try:
            return (self.dir / LOSS_LOG).open("a")
        except OSError as e:
            raise OutputError(
                f"cannot write {self.dir / LOSS_LOG}: {ckpt.write_error(e)}"
            ) from None

    def set_lr(self) -> None:
        """The schedule's rate for this iteration (a pure function of it: resumes exactly)."""
        cfg = self.cfg
        lr = cfg.lr * cfg.schedule.factor(self.iteration, cfg.iterations)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def log_step(
        self, out: StepOutput, meter: _Meter, log_file: Any, bar: tqdm, deadline: float | None
    ) -> None:
        """One loss-log line (rank 0) and the progress bar's numbers."""
        now = time.perf_counter()
        rate = meter.window_rate(now)
        if log_file is not None:
            line = {
                "iteration": self.iteration,
                "time": round(time.time(), 3),
                "elapsed": round(now - meter.t_start, 3),
                "loss_a": out.loss_a,
                "loss_b": out.loss_b,
                "samples_per_s": round(rate, 2),
                "lr": self.optimizer.param_groups[0]["lr"],
                **{k: round(v, 6) for k, v in out.terms.items()},
            }
            try:
                log_file.write(json.dumps(line) + "\n")
                log_file.flush()
            except OSError as e:
                raise OutputError(
                    f"cannot write {self.dir / LOSS_LOG}: {ckpt.write_error(e)}; finished "
                    "work is saved - run the same command to resume"
                ) from None
        post = {"A": f"{out.loss_a:.4f}", "B": f"{out.loss_b:.4f}", "samples/s": f"{rate:.1f}"}
        if deadline is not None:
            post["left"] = f"{max(deadline - now, 0) / 60:.1f}min"
        bar.set_postfix(post, refresh=False)

    def periodic(self, preview: dict[str, torch.Tensor]) -> None:
        """Snapshot and preview when their intervals come round.

        A snapshot is due every ``save_every`` iterations and, whatever the iteration, once
        ``save_minutes`` have passed since the last one. Saving reads the state and draws no
        random number, so when it happens does not change the run.
        """
        minutes = self.cfg.save_minutes
        if self.iteration % self.cfg.save_every == 0:
            self.save("interval")
        elif minutes and time.monotonic() - self.saved_time >= minutes * 60:
            self.save("time")
        every = self.cfg.preview_every
        if self.dist.main and every and self.iteration % every == 0:
            self.write_preview(preview)

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
    "read_loss_log",
    "resolve_config",
    "train",
    "weights_digest",
]
