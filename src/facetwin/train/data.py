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
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from facetwin.errors import InputError, NoFaceError, UsageError
from facetwin.face.align import recrop, recrop_matrix, transform_points
from facetwin.train.augment import AugmentConfig, augment

log = logging.getLogger(__name__)

SIDE_CODE = {"a": 0, "b": 1}
CONTEXT = 1.5  # cached crop side / model crop side: room for rotation, zoom, shift and warp


@dataclass
class FaceBank:
    """All faces of one identity, cropped once for training.

    sources: (F, C, C, 3) RGB uint8, C >= size, the model crop plus context, centred;
    masks: (F, C, C) uint8; landmarks: (F, 68, 2) float32 in source pixels;
    base: 2x3 source -> model crop (size x size at ``coverage``); ids: face ids in the set;
    valid: (F, C, C) uint8, 255 where the crop shows the face's own pixels and 0 where it lies
    past the frame's edge (smeared edge pixels) or where extract cut a hand out of the face's
    mask (``FaceSet.load_cut``): what the model must not learn; None when nothing is cut.
    """

    sources: np.ndarray
    masks: np.ndarray
    landmarks: np.ndarray
    base: np.ndarray
    size: int
    coverage: float
    ids: list[int]
    splits: dict[str, int] = field(default_factory=dict)  # held-out frames start here
    mean_embedding: np.ndarray | None = None  # of the training faces only
    valid: np.ndarray | None = None

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


def holdout_splits(records: Iterable[Any], fraction: float) -> dict[str, int]:
    """First held-out frame of each video source: the last ``fraction`` of its face frames.

    The split is by *frames that hold a face*, not by the clip's length, so two encodings of one
    footage (or a clip whose face leaves half-way) are cut at the same moment. A source with a
    single face frame (a photo) is never held out. Evaluating on the frames after the split
    measures the swap on expressions and poses the model has not seen.
    """
    frames: dict[str, set[int]] = {}
    for r in records:
        frames.setdefault(r.source, set()).add(int(r.frame))
    out: dict[str, int] = {}
    for source, fs in frames.items():
        ordered = sorted(fs)
        keep = len(ordered) - int(round(len(ordered) * fraction))
        if fraction > 0 and len(ordered) > 1 and keep < len(ordered):
            out[source] = ordered[max(keep, 1)]
    return out


def load_bank(
    fs: Any, size: int, coverage: float, mask_kind: str = "extended", holdout: float = 0.0
) -> FaceBank:
    """Crop every face of face set ``fs`` for a model of input ``size`` at ``coverage``.

    ``holdout``: leave out the last fraction of each video's face frames (see
    :func:`holdout_splits`).
    """
    records = fs.faces()
    splits = holdout_splits(records, holdout)
    records = [r for r in records if r.frame < splits.get(r.source, r.frame + 1)]
    if not records:
        raise NoFaceError(f"face set {getattr(fs, 'root', fs)} holds no faces")
    side = context_side(size, coverage, fs.coverage)
    ctx_cov = coverage * side / size
    to_source = recrop_matrix(fs.size, fs.coverage, side, ctx_cov)
    sources = np.empty((len(records), side, side, 3), np.uint8)
    masks = np.empty((len(records), side, side), np.uint8)
    marks = np.empty((len(records), 68, 2), np.float32)
    valid = np.full((len(records), side, side), 255, np.uint8)
    frame_sizes = source_sizes(fs)
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
        shown = shown_pixels(fs, rec, frame_sizes)
        if shown is not None:
            valid[i] = recrop(shown, fs.coverage, ctx_cov, side)
            masks[i] = np.minimum(masks[i], valid[i])
    if missing_masks:
        log.warning(
            "%d of %d faces have no stored mask; using the whole crop", missing_masks, len(records)
        )
    off = (side - size) / 2
    base = np.array([[1.0, 0.0, -off], [0.0, 1.0, -off]])
    embs = [r.embedding for r in records if r.embedding is not None]
    mean = np.mean(embs, axis=0).astype(np.float32) if embs else None
    ids = [r.id for r in records]
    edge = None if valid.min() == 255 else valid
    if edge is not None:
        cut = int((valid.reshape(len(valid), -1).min(1) < 255).sum())
        log.info(
            "%d of %d faces reach past their frame's edge or have a hand cut out: "
            "those pixels are out of the loss",
            cut,
            len(valid),
        )
    return FaceBank(sources, masks, marks, base, size, coverage, ids, splits, mean, edge)


def source_sizes(fs: Any) -> dict[str, tuple[int, int]]:
    """Source path -> (width, height) of a face set (empty for an object without sources)."""
    if not hasattr(fs, "sources"):
        return {}
    return {str(s["path"]): (int(s["width"]), int(s["height"])) for s in fs.sources()}


def shown_pixels(fs: Any, rec: Any, frame_sizes: dict[str, tuple[int, int]]) -> np.ndarray | None:
    """uint8 (size, size) of the stored crop: 255 where it shows the face's own pixels, 0 past
    the frame's edge and where extract cut a hand out (``load_cut``); None: all of it."""
    shown = None
    if rec.source in frame_sizes and rec.matrix is not None:
        shown = inside_frame(rec.matrix, frame_sizes[rec.source], fs.size)
    cut = fs.load_cut(rec) if hasattr(fs, "load_cut") else None
    if cut is not None and cut.any():
        shown = 255 - cut if shown is None else np.minimum(shown, 255 - cut)
    return shown


def inside_frame(matrix: np.ndarray, frame: tuple[int, int], size: int) -> np.ndarray:
    """uint8 (size, size): 255 where the aligned crop of ``matrix`` shows the frame, else 0.

    Alignment fills what lies past the frame's edge with replicated edge pixels (streaks).
    """
    w, h = frame
    return cv2.warpAffine(
        np.full((h, w), 255, np.uint8),
        np.asarray(matrix, np.float64)[:2],
        (size, size),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


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
    bank: FaceBank,
    indices: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    input_size: int | None = None,
) -> dict[str, torch.Tensor]:
    """Augment the faces ``indices`` into uint8 NCHW tensors (warped, target, mask, regions,
    valid: 0 where the target lies past its frame's edge).

    The bank is cropped at the model's *output* side; a model that draws more pixels than it
    reads (``input_size`` smaller) gets its warped input shrunk to ``input_size`` with area
    averaging, and learns to restore the detail of the larger target.

    uint8 keeps the worker-to-trainer traffic (and any host-to-GPU copy) 4x smaller than float;
    the trainer converts on the device.
    """
    n, s = len(indices), bank.size
    si = input_size or s
    out = {
        "warped": np.empty((n, 3, si, si), np.uint8),
        "target": np.empty((n, 3, s, s), np.uint8),
        "mask": np.empty((n, 1, s, s), np.uint8),
        "regions": np.empty((n, 1, s, s), np.uint8),
        "valid": np.full((n, 1, s, s), 255, np.uint8),
    }
    for j, i in enumerate(indices):
        edge = None if bank.valid is None else bank.valid[i]
        aug = augment(
            bank.sources[i], bank.masks[i], bank.landmarks[i], bank.base, s, rng, cfg, edge
        )
        warped = aug.warped if si == s else shrink(aug.warped, si)
        out["warped"][j] = warped.transpose(2, 0, 1)
        out["target"][j] = aug.target.transpose(2, 0, 1)
        out["mask"][j, 0] = aug.mask
        out["regions"][j, 0] = aug.regions
        if aug.valid is not None:
            out["valid"][j, 0] = aug.valid
    return {k: torch.from_numpy(v) for k, v in out.items()}


def shrink(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` resized to side x side by area averaging (the low-resolution model input)."""
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


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
        input_size: int | None = None,
        warp_stop: int | None = None,
    ) -> None:
        self.banks = banks
        self.warp_stop = warp_stop  # iterations from here on are drawn without the random warp
        self.input_size = input_size
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
        cfg = self.augment_cfg
        if self.warp_stop is not None and iteration >= self.warp_stop:
            cfg = replace(cfg, warp=0.0)
        return make_side_batch(bank, idx, rng, cfg, self.input_size)

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
