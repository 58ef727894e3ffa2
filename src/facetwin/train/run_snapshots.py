"""A run's snapshots: when one is due (the policy), what goes into it, and loading one back for
a resume or a rollback.

The policy: a snapshot every ``save_every`` iterations and, whatever the iteration, once
``save_minutes`` have passed since the last one; the trainer adds one at every clean stop.
Saving reads the state and draws no random number, so when it happens does not change the
run. Only rank 0 writes; every rank loads (a resume or a rollback must leave all ranks with
the same weights, so each reads the same snapshot).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from facetwin.model_meta import latest_snapshot
from facetwin.train import ddp
from facetwin.train.checkpoint import save_snapshot
from facetwin.train.config import TrainConfig
from facetwin.train.models import SwapAutoencoder
from facetwin.train.serialize import set_rng_state
from facetwin.train.snapshot_read import load_snapshot, read_aux
from facetwin.train.step import Step


@dataclass
class RunSnapshots:
    """Saving and loading the state of one run (model, optimizer, the step's own state).

    ``saved_at``: the iteration of the newest snapshot (None before the first);
    ``saved_time``: when it was written, or this session's start (for ``save_minutes``).
    """

    dir: Path
    cfg: TrainConfig
    dist: ddp.DistInfo
    model: SwapAutoencoder
    optimizer: torch.optim.Optimizer
    step: Step
    saved_at: int | None = None
    saved_time: float = field(default_factory=time.monotonic)

    @property
    def arch(self) -> str:
        assert self.cfg.arch is not None
        return self.cfg.arch

    def due(self, iteration: int) -> str | None:
        """The reason a snapshot is due after ``iteration`` ("interval", "time"), or None."""
        minutes = self.cfg.save_minutes
        if iteration % self.cfg.save_every == 0:
            return "interval"
        if minutes and time.monotonic() - self.saved_time >= minutes * 60:
            return "time"
        return None

    def load(self, snap: Path) -> dict[str, Any]:
        """Weights, optimizer state (and the step's own state, e.g. the GAN's discriminators)
        of ``snap``; its state.json."""
        doc = load_snapshot(snap, self.model, self.arch, self.optimizer)
        if self.step.aux_names:
            tensors = read_aux(snap, doc, list(self.step.aux_names))
            meta = doc.get(self.model.step_kind, {})
            self.step.load_aux_state(tensors, meta, int(doc["iteration"]))
        return doc

    def restore(self) -> tuple[Path | None, int]:
        """The newest snapshot loaded with its RNG and GradScaler states, and its iteration
        ((None, 0) for a new run)."""
        snap = latest_snapshot(self.dir)
        if snap is None:
            return None, 0
        doc = self.load(snap)
        self.saved_at = int(doc["iteration"])
        set_rng_state(doc.get("rng", {}))
        if self.step.scaler is not None and doc.get("scaler"):
            self.step.scaler.load_state_dict(doc["scaler"])
        return snap, self.saved_at

    def rollback(self, iteration: int) -> Path | None:
        """Back to the newest snapshot's weights and optimizer state (after a non-finite loss);
        the step goes on from ``iteration``. The snapshot, or None if there is none yet."""
        snap = latest_snapshot(self.dir)
        if snap is None:
            return None
        self.load(snap)
        self.step.resume_at(iteration)
        return snap

    def save(
        self,
        iteration: int,
        identities: dict[str, Any],
        losses: tuple[float, float] | None,
        reason: str = "stop",
    ) -> Path | None:
        """A snapshot of ``iteration`` (rank 0 only; once per iteration). ``reason`` is one of
        :data:`checkpoint.REASONS`; it decides how pruning treats the snapshot later."""
        if not self.dist.main or self.saved_at == iteration:
            return latest_snapshot(self.dir) if self.dist.main else None
        state = self.state(iteration, identities, losses, reason)
        aux, aux_meta = self.step.aux_state()
        if aux is not None:
            state[self.model.step_kind] = aux_meta  # "gan": the discriminators' optimizer etc.
        snap = save_snapshot(
            self.dir, iteration, self.model, self.optimizer, state, self.cfg.keep, aux
        )
        self.saved_at = iteration
        self.saved_time = time.monotonic()
        return snap

    def state(
        self,
        iteration: int,
        identities: dict[str, Any],
        losses: tuple[float, float] | None,
        reason: str,
    ) -> dict[str, Any]:
        """The JSON part of a snapshot that the run knows (checkpoint adds the rest)."""
        state: dict[str, Any] = {
            "reason": reason,
            "arch": self.arch,
            "config": self.cfg.to_json(),
            "identities": identities,
            "losses": None if losses is None else dict(zip("ab", losses)),
            # numpy needs no saved state for the data: batch i draws from a fresh PCG64 seeded
            # with SeedSequence([seed, rank, side, i]); recorded so a reader can regenerate it.
            "data_rng": {
                "bit_generator": "PCG64",
                "entropy": "[seed, rank, side, iteration]",
                "seed": self.cfg.seed,
                "next_iteration": iteration,
            },
            "time": time.time(),
        }
        if self.step.scaler is not None:
            state["scaler"] = self.step.scaler.state_dict()
        return state
