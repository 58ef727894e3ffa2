"""A run's data: both face sets loaded into banks, the loader of this rank's batches from the
first iteration to train, and the fixed faces of the preview grid.

Loaded only after the snapshot is restored (the loader starts at its iteration) and before
anything is written, so a face set that fails to load leaves the model folder as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facetwin.errors import UsageError
from facetwin.faceset import FaceSet
from facetwin.train import ddp
from facetwin.train.config import TrainConfig
from facetwin.train.data import FaceBank, PairDataset, load_bank, make_loader, preview_indices
from facetwin.train.models import arch_info


@dataclass
class RunData:
    """What the loop consumes: the loader, the preview faces per side (uint8 NCHW) and each
    identity's record for the snapshots (face set, faces, mean embedding, held-out split)."""

    loader: Any
    preview: dict[str, torch.Tensor]
    identities: dict[str, Any]


def load_identity(
    path: str, size: int, coverage: float, mask: str, holdout: float = 0.0
) -> tuple[FaceBank, dict[str, Any]]:
    """One side's face bank and the record of it that snapshots carry (convert and eval read
    the mean embedding to tell the identities apart)."""
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


def preview_faces(banks: dict[str, FaceBank], count: int = 4) -> dict[str, torch.Tensor]:
    """The same ``count`` plain crops of each side at every preview (NCHW uint8)."""
    return {
        s: torch.from_numpy(np.stack([b.plain(i) for i in preview_indices(len(b), count)])).permute(
            0, 3, 1, 2
        )
        for s, b in banks.items()
    }


def warp_stop(cfg: TrainConfig) -> int | None:
    """First iteration drawn without the random warp (``warp_off``; needs a known total)."""
    if not cfg.warp_off or not cfg.iterations:
        return None
    return int(round(cfg.iterations * (1 - cfg.warp_off)))


def load_run_data(
    cfg: TrainConfig, dist: ddp.DistInfo, device: torch.device, start: int
) -> RunData:
    """Both face sets, and the loader of this rank's batches from iteration ``start``."""
    assert cfg.arch is not None
    info = arch_info(cfg.arch)
    banks: dict[str, FaceBank] = {}
    identities: dict[str, Any] = {}
    for side, path in (("a", cfg.faceset_a), ("b", cfg.faceset_b)):
        if not path:
            raise UsageError(f"face set {side.upper()} is not set")
        banks[side], identities[side] = load_identity(
            path, info.output_size, float(cfg.coverage or 1.0), cfg.mask, cfg.holdout
        )
    dataset = PairDataset(
        banks,
        cfg.batch,
        cfg.seed,
        cfg.augment,
        dist.rank,
        dist.world,
        input_size=info.input_size,
        warp_stop=warp_stop(cfg),
    )
    loader = make_loader(
        dataset, start, cfg.iterations, cfg.workers, pin_memory=device.type == "cuda"
    )
    return RunData(loader, preview_faces(banks), identities)
