"""Training data: face sets -> cached crops -> augmented batches, deterministic per iteration.

Determinism is what makes an interrupted run resumable to the *same* loss curve: the batch of
iteration ``i`` is a pure function of (seed, rank, side, i). Which faces it holds comes from a
per-epoch permutation (every face is seen once per epoch), its augmentation from a numpy
Generator seeded with that tuple. The DataLoader's sampler yields iteration numbers, each worker
builds whole batches, and the loader returns them in sampler order, so the worker count changes
the speed and never the data.
"""

from __future__ import annotations

import itertools
import logging
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from facetwin.errors import InputError, NoFaceError, UsageError
from facetwin.extract.align import recrop, recrop_matrix, transform_points
from facetwin.train.augment import AugmentConfig, augment

log = logging.getLogger(__name__)

SIDE_CODE = {"a": 0, "b": 1}
CONTEXT = 1.5  # cached crop side / model crop side: room for rotation, zoom, shift and warp


@dataclass
class FaceBank:
    """All faces of one identity, cropped once for training.

    sources: (F, C, C, 3) RGB uint8, C >= size, the model crop plus context, centred;
    masks: (F, C, C) uint8; landmarks: (F, 68, 2) float32 in source pixels;
    base: 2x3 source -> model crop (size x size at ``coverage``); ids: face ids in the set.
    """

    sources: np.ndarray
    masks: np.ndarray
    landmarks: np.ndarray
    base: np.ndarray
    size: int
    coverage: float
    ids: list[int]

    def __len__(self) -> int:
        return len(self.sources)

    def plain(self, index: int) -> np.ndarray:
        """The un-augmented model crop of face ``index`` (what the target is with no warp)."""
        off = (self.sources.shape[1] - self.size) // 2
        return self.sources[index, off : off + self.size, off : off + self.size]


def context_side(size: int, coverage: float, stored_coverage: float) -> int:
    """Side of the cached crop: ~CONTEXT x the model crop, never wider than the face set holds.

    It differs from ``size`` by an even number of pixels so the model crop sits on whole pixels
    inside it (the un-augmented target is then an exact sub-array).
    """
    if coverage > stored_coverage + 1e-6:
        raise UsageError(
            f"coverage {coverage:g} is wider than the face set's stored {stored_coverage:g}; "
            "use a smaller --coverage or re-extract with a larger one"
        )
    ratio = min(CONTEXT, stored_coverage / coverage)
    return size + 2 * int(size * (ratio - 1) / 2)


def load_bank(fs: Any, size: int, coverage: float, mask_kind: str = "extended") -> FaceBank:
    """Crop every face of face set ``fs`` for a model of input ``size`` at ``coverage``."""
    records = fs.faces()
    if not records:
        raise NoFaceError(f"face set {getattr(fs, 'root', fs)} holds no faces")
    side = context_side(size, coverage, fs.coverage)
    ctx_cov = coverage * side / size
    to_source = recrop_matrix(fs.size, fs.coverage, side, ctx_cov)
    sources = np.empty((len(records), side, side, 3), np.uint8)
    masks = np.empty((len(records), side, side), np.uint8)
    marks = np.empty((len(records), 68, 2), np.float32)
    missing_masks = 0
    for i, rec in enumerate(records):
        aligned = fs.load_aligned(rec)
        if aligned.shape[:2] != (fs.size, fs.size):
            raise InputError(f"face {rec.id} is {aligned.shape[1]} px, the set says {fs.size}")
        sources[i] = recrop(aligned, fs.coverage, ctx_cov, side)
        try:
            masks[i] = recrop(fs.load_mask(rec, mask_kind), fs.coverage, ctx_cov, side)
        except InputError:
            masks[i] = 255  # no stored mask: the whole crop counts as face
            missing_masks += 1
        marks[i] = transform_points(rec.landmarks_aligned, to_source)
    if missing_masks:
        log.warning(
            "%d of %d faces have no stored mask; using the whole crop", missing_masks, len(records)
        )
    off = (side - size) / 2
    base = np.array([[1.0, 0.0, -off], [0.0, 1.0, -off]])
    return FaceBank(sources, masks, marks, base, size, coverage, [r.id for r in records])


@lru_cache(maxsize=16)
def epoch_order(seed: int, side: int, epoch: int, count: int) -> np.ndarray:
    """The order faces are drawn in during one epoch (cached: a batch rarely spans two)."""
    return np.random.default_rng([seed, side, epoch, 0x0E90C4]).permutation(count)


def batch_indices(
    seed: int, side: int, iteration: int, batch: int, count: int, rank: int = 0, world: int = 1
) -> np.ndarray:
    """Face indices of one rank's batch at ``iteration``: consecutive slots of the epoch orders.

    Ranks take interleaved slices of the same stream, so together they still see every face
    once per epoch.
    """
    first = (iteration * world + rank) * batch
    out = np.empty(batch, np.int64)
    for j, k in enumerate(range(first, first + batch)):
        out[j] = epoch_order(seed, side, k // count, count)[k % count]
    return out


def make_side_batch(
    bank: FaceBank, indices: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> dict[str, torch.Tensor]:
    """Augment the faces ``indices`` into uint8 NCHW tensors (warped, target, mask, regions).

    uint8 keeps the worker-to-trainer traffic (and any host-to-GPU copy) 4x smaller than float;
    the trainer converts on the device.
    """
    n, s = len(indices), bank.size
    out = {
        "warped": np.empty((n, 3, s, s), np.uint8),
        "target": np.empty((n, 3, s, s), np.uint8),
        "mask": np.empty((n, 1, s, s), np.uint8),
        "regions": np.empty((n, 1, s, s), np.uint8),
    }
    for j, i in enumerate(indices):
        aug = augment(bank.sources[i], bank.masks[i], bank.landmarks[i], bank.base, s, rng, cfg)
        out["warped"][j] = aug.warped.transpose(2, 0, 1)
        out["target"][j] = aug.target.transpose(2, 0, 1)
        out["mask"][j, 0] = aug.mask
        out["regions"][j, 0] = aug.regions
    return {k: torch.from_numpy(v) for k, v in out.items()}


class PairDataset(Dataset):
    """Item ``i`` is the whole batch of iteration ``i`` for both identities.

    ``{"iteration": i, "a": {...}, "b": {...}}`` with the tensors of :func:`make_side_batch`.
    """

    def __init__(
        self,
        banks: dict[str, FaceBank],
        batch: int,
        seed: int,
        augment_cfg: AugmentConfig,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.banks = banks
        self.batch = batch
        self.seed = seed
        self.augment_cfg = augment_cfg
        self.rank = rank
        self.world = world

    def side_batch(self, side: str, iteration: int) -> dict[str, torch.Tensor]:
        bank = self.banks[side]
        code = SIDE_CODE[side]
        idx = batch_indices(
            self.seed, code, iteration, self.batch, len(bank), self.rank, self.world
        )
        rng = np.random.default_rng([self.seed, self.rank, code, iteration])
        return make_side_batch(bank, idx, rng, self.augment_cfg)

    def __getitem__(self, iteration: int) -> dict[str, Any]:
        return {"iteration": iteration, **{s: self.side_batch(s, iteration) for s in self.banks}}


def _worker_init(_: int) -> None:
    """Workers ignore Ctrl-C: the trainer catches it, finishes its step and saves, and a worker
    killed by the same signal would make the loader raise first.

    (Not ``cv2.setNumThreads(1)`` here: in a forked worker it tries to tear down the parent's
    OpenCV thread pool, whose threads do not exist in the child, and deadlocks. torch already
    limits each worker to one thread, and OpenCV re-creates its pool lazily after a fork.)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_loader(
    dataset: PairDataset, start: int, stop: int | None, workers: int, pin_memory: bool = False
) -> DataLoader:
    """Batches of iterations ``start, start+1, ...`` (``stop`` excluded; None: no end).

    Workers prefetch a few iterations ahead, so augmentation overlaps the training step.
    """
    sampler: Iterable[int] = itertools.count(start) if stop is None else range(start, stop)
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=sampler,  # type: ignore[arg-type]
        num_workers=workers,
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=4 if workers else None,
        pin_memory=pin_memory,
    )


def preview_indices(count: int, n: int) -> list[int]:
    """``n`` faces spread evenly through the set (fixed, so previews are comparable over time)."""
    n = min(n, count)
    return [int(round(i * (count - 1) / max(n - 1, 1))) for i in range(n)]
