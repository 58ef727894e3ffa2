"""Multi-process training with DistributedDataParallel, launched by ``torchrun``.

``torchrun --nproc_per_node G -m facetwin.cli train ...`` starts G copies of the trainer with
RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR set; each one calls :func:`setup`, which joins the
process group (NCCL on CUDA, gloo elsewhere). Every rank builds the same model; each training
step puts what takes gradients under DDP with :func:`wrap` (the plain step its model, the GAN
step its generator and its pair of discriminators), so gradients are averaged and the ranks stay
bit-identical; each draws its own batches (the rank is part of the data seed) and only rank 0
writes snapshots, previews and logs. Without those variables everything here is a no-op and
training is single-process. One node or several: docs/training.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job; ``owns_group``: it must tear the group down."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment (if any)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        owns = True
    return DistInfo(rank=rank, world=world, local_rank=local, owns_group=owns)


def any_flags(info: DistInfo, device: torch.device, *flags: bool) -> list[bool]:
    """Each flag OR-ed over all ranks (e.g. "my loss is NaN", "my time is up").

    Every rank must take the same branch: a rank that skipped a backward pass alone would leave
    the others waiting in the gradient all-reduce for ever.
    """
    if not info.enabled:
        return list(flags)
    t = torch.tensor([float(f) for f in flags], device=device)  # NCCL reduces GPU tensors only
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def wrap(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """``module`` under DistributedDataParallel when the job has several ranks, else itself.

    DDP broadcasts rank 0's parameters and buffers when it wraps, and averages the gradients of
    every parameter over the ranks during each backward through it; the wrapped module shares
    its parameters, so optimizers, snapshots and in-place loads keep working on the bare one.
    """
    if not info.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.enabled and info.owns_group and dist.is_initialized():
        dist.destroy_process_group()
