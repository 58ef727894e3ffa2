"""Reconstruction losses, combined from a small spec string such as ``"l1"`` or ``"l1+0.5*ssim"``.

Every term takes (prediction, target, weight) with a per-pixel weight map (N, 1, H, W). The
weight is 1 everywhere, raised to ``1 + emphasis`` over the eyes and mouth when eye/mouth
emphasis is on: those regions are small, so a plain mean lets the model leave them blurry, and
they are what a viewer looks at. ``mask_l1`` further multiplies the weight by the face mask, so
hair and background stop competing with the face for capacity.

Terms are weighted means (divided by the weight sum), so a loss keeps its scale whatever the
emphasis: an L1 of 0.05 means the same with and without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from facetwin.errors import UsageError
from facetwin.registry import Registry
from facetwin.train.perceptual import onet_stages

Term = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
TERMS: Registry[Term] = Registry("loss")
EPS = 1e-6


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (N, C, H, W) under a per-pixel ``weight`` (N, 1, H, W)."""
    return (values * weight).sum() / (weight.sum() * values.shape[1]).clamp_min(EPS)


@TERMS.register("l1")
def l1(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean absolute error: the deepfakes default, less blurry than L2 on faces."""
    return weighted_mean((pred - target).abs(), weight)


@TERMS.register("mask_l1")
def mask_l1(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """L1 over the face mask only (weight x mask)."""
    return weighted_mean((pred - target).abs(), weight * mask)


def gaussian_kernel(
    size: int = 11, sigma: float = 1.5, device: torch.device | None = None
) -> torch.Tensor:
    """(size,) normalised 1-D Gaussian: SSIM's standard local window is its outer product."""
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


@lru_cache(maxsize=32)
def _blur_weights(n: int, size: int, sigma: float) -> np.ndarray:
    """Read-only (n, n) float64 weights of :func:`blur_matrix`, built once per shape.

    numpy, not torch: a cached tensor would carry the autocast dtype or inference mode of the
    call that first built it.
    """
    g = gaussian_kernel(size, sigma).double().numpy()
    src = np.abs(np.arange(n)[:, None] + np.arange(size) - size // 2)  # tap j of output i
    src = np.where(src > n - 1, 2 * (n - 1) - src, src)  # reflected at both ends
    m = np.zeros((n, n))
    np.add.at(m, (np.repeat(np.arange(n), size), src.ravel()), np.tile(g, n))
    m.flags.writeable = False
    return m


def blur_matrix(
    n: int, size: int, sigma: float, device: torch.device | None = None
) -> torch.Tensor:
    """(n, n) matrix of a reflect-padded 1-D Gaussian blur: ``m @ v`` blurs a length-n signal.

    Blurring by two matrix products (``mh @ x @ mw.T``) replaced separable grouped convolutions,
    for which oneDNN has no fast path on a CPU: full-size SSIM at 128 px (forward and backward,
    batch 8) went from 129 to 32 ms, with the same values to 4e-6
    (``benchmarks/results/quality-probes-2026-12-07.json``). The weights are cached: a training
    step asks for the same few every time, and building one had been ~3 % of an SSIM term.
    """
    return torch.tensor(_blur_weights(n, size, sigma), dtype=torch.float32, device=device)


def blur(x: torch.Tensor, sigma: float, size: int | None = None) -> torch.Tensor:
    """Gaussian blur of (N, C, H, W) over the last two axes, reflect-padded to keep the size
    (``size`` taps; default +/- 3 sigma)."""
    size = size or 2 * int(3 * sigma) + 1
    h, w = x.shape[-2:]
    mh = blur_matrix(h, size, sigma, x.device).to(x.dtype)
    mw = mh if w == h else blur_matrix(w, size, sigma, x.device).to(x.dtype)
    return mh @ x @ mw.T


def ssim_map(pred: torch.Tensor, target: torch.Tensor, size: int = 11) -> torch.Tensor:
    """Per-pixel SSIM (N, C, H, W) of images in [0, 1], reflect-padded to keep the size.

    The five local means (of p, t, p^2, t^2, p*t) are taken in one blur of the stacked
    channels with SSIM's standard window (11 taps, sigma 1.5).
    """
    ch = pred.shape[1]
    stack = torch.cat([pred, target, pred * pred, target * target, pred * target], 1)
    mu_p, mu_t, e_pp, e_tt, e_pt = blur(stack, 1.5, size).split(ch, 1)
    c1, c2 = 0.01**2, 0.03**2
    var_p = e_pp - mu_p**2
    var_t = e_tt - mu_t**2
    cov = e_pt - mu_p * mu_t
    num = (2 * mu_p * mu_t + c1) * (2 * cov + c2)
    den = (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    return num / den


@TERMS.register("ssim")
def ssim(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """1 - SSIM: rewards local structure and contrast that L1 averages away."""
    return 1 - weighted_mean(ssim_map(pred, target), weight)


@TERMS.register("ssim_half")
def ssim_half(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """1 - SSIM at half the side (both images 2x2-averaged first).

    The structure SSIM rewards - the shape of eyes, brows and mouth - lives at the scale the
    64 px encoder sees; at a quarter of the pixels the term costs a quarter of full-size SSIM,
    which on a CPU doubled a ``lite-hd`` step. L1 keeps the full-resolution detail.
    """
    if pred.shape[-1] < 32:
        return ssim(pred, target, weight, mask)
    return ssim(F.avg_pool2d(pred, 2), F.avg_pool2d(target, 2), F.avg_pool2d(weight, 2), mask)


@TERMS.register("onet")
def onet(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """A perceptual term: MTCNN O-Net's early activations, not eval's judge (train/perceptual.py).
    In the CPU demo recipe at 0.3 it raised the held-out sharpness ratio from 0.43 to 0.59 / 0.54
    with identity kept (benchmarks/results/quality-probes-2026-12-07c.json)."""
    stages = onet_stages(pred, target, weight)
    total = pred.new_zeros(())
    for got, want, w in stages:  # each stage over the target's mean activation there
        total = total + weighted_mean((got - want).abs(), w) / want.abs().mean().clamp_min(EPS)
    return total / len(stages)


@dataclass(frozen=True)
class LossSpec:
    """Parsed loss: weighted terms plus the eye/mouth emphasis."""

    terms: tuple[tuple[float, str], ...]
    emphasis: float = 0.0


def parse_loss(spec: str, emphasis: float = 0.0) -> LossSpec:
    """Parse ``"l1"``, ``"l1+ssim"``, ``"0.8*l1+0.2*ssim"``; UsageError on anything else."""
    terms: list[tuple[float, str]] = []
    for part in spec.replace(" ", "").split("+"):
        factor, _, name = part.rpartition("*")
        try:
            w = float(factor) if factor else 1.0
        except ValueError:
            raise UsageError(f"bad loss term {part!r} in {spec!r}; e.g. 'l1+0.5*ssim'") from None
        TERMS.get(name)  # UsageError listing the terms
        terms.append((w, name))
    if emphasis < 0:
        raise UsageError(f"eye/mouth emphasis must be >= 0, not {emphasis:g}")
    return LossSpec(tuple(terms), emphasis)


def pixel_weight(mask: torch.Tensor, regions: torch.Tensor, emphasis: float) -> torch.Tensor:
    """Per-pixel weight 1 + emphasis x (eyes and mouth), from the [0, 1] region map."""
    if emphasis == 0:
        return torch.ones_like(mask)
    return 1 + emphasis * regions


def compute_loss(
    spec: LossSpec,
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    regions: torch.Tensor,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """The combined loss of one identity's batch; all inputs float in [0, 1], computed in fp32.

    ``valid`` (0 where the target lies past its frame's edge) takes those pixels out of every
    term: the replicated edge pixels there are not the face, and a model that learned them
    would draw streaks.

    fp32 because under autocast a bf16 sum over 200k pixels loses the small differences late
    training is made of.
    """
    pred, target = pred.float(), target.float()
    weight = pixel_weight(mask, regions, spec.emphasis)
    if valid is not None:
        # past the edge the prediction is replaced by the target itself: no term (windowed
        # SSIM included) then sees a difference there or pulls the model towards the streaks
        valid = valid.float()
        pred = valid * pred + (1 - valid) * target
        weight = weight * valid
    total = pred.new_zeros(())
    for w, name in spec.terms:
        total = total + w * TERMS.get(name)(pred, target, weight, mask)
    return total
