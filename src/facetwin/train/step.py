"""One optimisation step of the plain autoencoders, and the precision / layout helpers that the
GAN step (:mod:`facetwin.train.gan`) and the benchmarks share with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from facetwin.errors import UsageError
from facetwin.registry import Registry
from facetwin.train import ddp
from facetwin.train.losses import LossSpec, compute_loss, parse_loss
from facetwin.train.models import SwapAutoencoder


@dataclass(frozen=True)
class Precision:
    """Autocast dtype (None: plain fp32) and whether fp16 needs a GradScaler."""

    dtype: torch.dtype | None = None
    scaler: bool = False


def choose_precision(amp: str, device: torch.device) -> Precision:
    """Mixed precision where it is safe and fast: bf16 on CUDA (fp16 + scaler on older GPUs).

    Not automatic on CPU: only CPUs with AVX512-BF16/AMX gain, and bf16's 8-bit mantissa makes
    the small late-training updates noisier; ``amp="bf16"`` asks for it explicitly.
    """
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return Precision()
    if device.type == "cuda":
        if amp in ("auto", "bf16") and torch.cuda.is_bf16_supported():
            return Precision(torch.bfloat16)
        if amp == "bf16":
            raise UsageError("this GPU has no bf16; use --amp fp16 or --amp off")
        return Precision(torch.float16, scaler=True)
    if amp == "bf16" and device.type == "cpu":
        return Precision(torch.bfloat16)
    raise UsageError(f"--amp {amp} is not supported on {device.type}; use --amp off")


def autocast(device: torch.device, precision: Precision) -> Any:
    """The autocast context for ``precision`` (a no-op one for plain fp32)."""
    dtype = precision.dtype
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def apply_gradients(
    total: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> None:
    """Backward of ``total`` and one ``optimizer`` step, through the fp16 GradScaler if any."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        total.backward()
        optimizer.step()


def to_images(t: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 NCHW from the loader -> float [0, 1] on ``device`` (converted there: 4x less copy)."""
    x = t.to(device, non_blocking=True).float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.ndim == 4 else x


class _PairForward(nn.Module):
    """A and B in one forward, so DDP sees every parameter used (see forward_pair)."""

    def __init__(self, model: SwapAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_pair(xa, xb)


@dataclass
class StepOutput:
    """What one step reports: the reconstruction loss per side (the number the progress bar and
    loss log follow), whether it was applied, and any further named terms (the GAN's)."""

    loss_a: float
    loss_b: float
    finite: bool
    terms: dict[str, float] = field(default_factory=dict)


@dataclass
class StepContext:
    """What a training step is built from: the trainer's resolved settings. ``extra`` holds an
    architecture family's own settings (the GAN's :class:`GanLossConfig`)."""

    model: SwapAutoencoder
    optimizer: torch.optim.Optimizer
    device: torch.device
    precision: Precision
    channels_last: bool
    dist: ddp.DistInfo
    loss: str = "l1"
    emphasis: float = 0.0
    betas: tuple[float, float] = (0.5, 0.999)
    extra: Any = None


class Step(Protocol):
    """The contract between the trainer and a training step, whatever the architecture.

    The trainer runs ``step(batch)`` each iteration and saves and restores the step's own state
    through the ``aux`` methods; it never asks which kind of step it drives. The architecture
    names its kind (``SwapAutoencoder.step_kind``) and :data:`STEPS` builds it.
    """

    #: the GradScaler of the model's optimizer (fp16), saved with the snapshot; None otherwise
    scaler: torch.amp.GradScaler | None
    #: tensor files this step adds to a snapshot (beside the model and its optimizer)
    aux_names: tuple[str, ...]

    def __call__(self, batch: dict[str, Any]) -> StepOutput: ...

    def aux_state(self) -> tuple[dict[str, dict[str, torch.Tensor]] | None, dict[str, Any]]:
        """(tensor files by name or None, JSON state) to save with a snapshot."""
        ...

    def load_aux_state(
        self, tensors: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any], iteration: int
    ) -> None:
        """Inverse of :meth:`aux_state`, for the snapshot of ``iteration``."""
        ...

    def resume_at(self, iteration: int) -> None:
        """Continue from ``iteration`` (after a rollback, the counter moves on)."""
        ...


STEPS: Registry[Callable[[StepContext], Step]] = Registry("training step")


class TrainStep:
    """One optimisation step on a batch from :class:`PairDataset` (also used by the benchmark):
    the reconstruction loss only, so it adds nothing to a snapshot."""

    aux_names: tuple[str, ...] = ()

    def __init__(
        self,
        model: SwapAutoencoder,
        optimizer: torch.optim.Optimizer,
        loss: LossSpec,
        device: torch.device,
        precision: Precision,
        channels_last: bool,
        dist: ddp.DistInfo | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.dist = dist or ddp.DistInfo()
        self.scaler = torch.amp.GradScaler(device.type) if precision.scaler else None
        self.pair = ddp.wrap(_PairForward(model), self.dist, device)

    def inputs(self, side: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        cl = self.channels_last
        return tuple(
            to_images(side[k], self.device, cl and k in ("warped", "target"))
            for k in ("warped", "target", "mask", "regions", "valid")
            if k in side
        )

    def __call__(self, batch: dict[str, Any]) -> StepOutput:
        xa, ta, *rest_a = self.inputs(batch["a"])
        xb, tb, *rest_b = self.inputs(batch["b"])
        with autocast(self.device, self.precision):
            pa, pb = self.pair(xa, xb)
        la = compute_loss(self.loss, pa, ta, *rest_a)
        lb = compute_loss(self.loss, pb, tb, *rest_b)
        values = torch.stack([la.detach(), lb.detach()]).cpu()
        finite = bool(torch.isfinite(values).all())
        (bad,) = ddp.any_flags(self.dist, self.device, not finite)
        out = StepOutput(float(values[0]), float(values[1]), not bad)
        if bad:
            return out
        apply_gradients(la + lb, self.optimizer, self.scaler)
        return out

    def aux_state(self) -> tuple[dict[str, dict[str, torch.Tensor]] | None, dict[str, Any]]:
        return None, {}

    def load_aux_state(
        self, tensors: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any], iteration: int
    ) -> None:
        pass

    def resume_at(self, iteration: int) -> None:
        pass


@STEPS.register("plain", help="the reconstruction loss, one optimizer (every non-GAN arch)")
def plain_step(ctx: StepContext) -> TrainStep:
    loss = parse_loss(ctx.loss, ctx.emphasis)
    return TrainStep(
        ctx.model, ctx.optimizer, loss, ctx.device, ctx.precision, ctx.channels_last, ctx.dist
    )
