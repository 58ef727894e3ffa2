"""The GAN's loss terms and their weights (:class:`GanLossConfig`): what the generator of the
``gan`` architectures is trained on, and the discriminators' adversarial loss.

Why each generator term is there (weights in :class:`GanLossConfig`):

- ``recon``: L1 of the *composited* output (``alpha * rgb + (1 - alpha) * input``) against the
  un-warped target: the main signal, as in every autoencoder swap.
- ``self_recon`` (small): L1 of the *raw* RGB against the target. Where alpha is partial the
  raw RGB shows through, and without this term it may be anything where alpha is near 0 (the
  "harmonious but different" trick: it also helps the edges blend).
- ``adversarial``: a per-identity PatchGAN judges 8x8 overlapping patches of the composite; it
  penalises the blur L1 settles for (LSGAN or hinge).
- ``identity``: distance between the dlib face embeddings (:class:`FaceResNet`, frozen) of the
  composite and of the target, so the output is recognisably the right person, not just close
  in pixels.
- ``mask_l1`` and ``mask_tv``: mean alpha and its total variation. Without them alpha drifts to
  1 (drawing everything is never worse for L1); small and smooth masks are what convert needs.
- ``mask_prior``: L1 between alpha and the face mask of the landmarks (the batch's ``mask``).
  Without it the cheapest early solution is to pass the (warped) input through (alpha near 0
  inside the face): the reconstruction is then good for the decoder's own identity and the swap
  shows the source face. Measured: after 8 CPU minutes without it, 0 % of the swapped held-out
  faces looked like the target (benchmarks/arch_compare.py).
- ``colour``: the raw RGB's mean colour per channel matches the input's, so a swapped face keeps
  the scene's lighting instead of the training set's average.

The adversarial and identity weights ramp up linearly over their warm-up iterations: both are
noisy gradients on a generator that cannot draw a face yet, and early on they only slow down
reconstruction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facetwin.errors import UsageError
from facetwin.train.models.gan import GanSwap

ADVERSARIAL_KINDS = ("lsgan", "hinge")


# -- adversarial losses ------------------------------------------------------------------------
def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss on real and fake logits (LSGAN: least squares to 1/0; hinge)."""
    if kind == "lsgan":
        return ((real - 1) ** 2).mean() + (fake**2).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    raise UsageError(
        f"adversarial loss must be one of {', '.join(ADVERSARIAL_KINDS)}, not {kind!r}"
    )


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss on the fake logits: make the discriminator call them real."""
    if kind == "lsgan":
        return ((fake - 1) ** 2).mean()
    if kind == "hinge":
        return -fake.mean()
    raise UsageError(
        f"adversarial loss must be one of {', '.join(ADVERSARIAL_KINDS)}, not {kind!r}"
    )


# -- generator terms ---------------------------------------------------------------------------
def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (both directions)."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    return dx + dy


def colour_loss(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """L1 between per-image, per-channel mean colours of ``output`` and ``reference``."""
    return (output.mean(dim=(2, 3)) - reference.mean(dim=(2, 3))).abs().mean()


def identity_loss(face_net: nn.Module, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance of the face embeddings of ``output`` and ``target``.

    The target's embedding is a constant (no graph kept); gradients reach the output through
    the frozen network. Distances are on dlib's scale (same person below ~0.6).
    """
    with torch.no_grad():
        ref = face_net(target.float())
    emb = face_net(output.float())
    return (emb - ref).pow(2).sum(dim=1).add(1e-8).sqrt().mean()


@dataclass
class GanLossConfig:
    """Weights of the generator terms (see the module) and the discriminator's settings.

    ``adversarial_warmup`` / ``identity_warmup``: iterations over which those weights ramp
    linearly from 0 to their value (0: full weight from the start).
    """

    recon: float = 1.0
    self_recon: float = 0.1
    adversarial: float = 0.1
    identity: float = 0.1
    mask_l1: float = 0.01
    mask_tv: float = 0.1
    mask_prior: float = 0.5
    colour: float = 1.0
    emphasis: float = 2.0  # eyes and mouth count 1 + emphasis in the reconstruction terms
    adversarial_kind: str = "lsgan"
    adversarial_warmup: int = 1000
    identity_warmup: int = 1000
    spectral_norm: bool = True

    def __post_init__(self) -> None:
        if self.adversarial_kind not in ADVERSARIAL_KINDS:
            raise UsageError(
                f"adversarial loss must be one of {', '.join(ADVERSARIAL_KINDS)}, "
                f"not {self.adversarial_kind!r}"
            )
        if min(self.adversarial_warmup, self.identity_warmup) < 0:
            raise UsageError("warm-up iterations must be >= 0")
        weights = (self.recon, self.self_recon, self.adversarial, self.identity, self.mask_l1)
        if min(*weights, self.mask_tv, self.mask_prior, self.colour, self.emphasis) < 0:
            raise UsageError("GAN loss weights must be >= 0")

    @classmethod
    def parse(cls, text: str, base: GanLossConfig | None = None) -> GanLossConfig:
        """``"identity=0,adversarial=0.2"`` (the CLI's ``--gan``) applied over ``base``."""
        types = {f.name: f.type for f in fields(cls)}
        changes: dict[str, Any] = {}
        for item in filter(None, (t.strip() for t in text.split(","))):
            key, eq, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if not eq or key not in types:
                raise UsageError(
                    f"bad --gan setting {item!r}; use NAME=VALUE with NAME one of "
                    + ", ".join(types)
                )
            kind = str(types[key])
            try:
                if "bool" in kind:
                    changes[key] = value.strip().lower() in ("1", "true", "yes", "on")
                elif "int" in kind:
                    changes[key] = int(value)
                elif "str" in kind:
                    changes[key] = value.strip()
                else:
                    changes[key] = float(value)
            except ValueError:
                raise UsageError(f"bad value in --gan setting {item!r}") from None
        return replace(base or cls(), **changes)

    def ramp(self, weight: float, warmup: int, iteration: int) -> float:
        """``weight`` scaled by min(1, iteration / warmup)."""
        return weight if warmup <= 0 else weight * min(1.0, iteration / warmup)

    def weights(self, iteration: int) -> dict[str, float]:
        """Every generator term's weight at ``iteration`` (warm-ups applied)."""
        return {
            "recon": self.recon,
            "self_recon": self.self_recon,
            "adversarial": self.ramp(self.adversarial, self.adversarial_warmup, iteration),
            "identity": self.ramp(self.identity, self.identity_warmup, iteration),
            "mask_l1": self.mask_l1,
            "mask_tv": self.mask_tv,
            "mask_prior": self.mask_prior,
            "colour": self.colour,
        }


def generator_terms(
    model: GanSwap,
    discriminator: nn.Module | None,
    face_net: nn.Module | None,
    x: torch.Tensor,
    target: torch.Tensor,
    rgb: torch.Tensor,
    alpha: torch.Tensor,
    kind: str = "lsgan",
    recon: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    face_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Unweighted generator terms of one identity's batch (all floats in [0, 1]).

    ``recon(pred, target)`` is the reconstruction loss (the trainer passes its ``--loss`` with the
    eye/mouth emphasis; default plain L1). ``adversarial`` is left out without a discriminator,
    ``identity`` without a face net, ``mask_prior`` without ``face_mask`` ((N, 1, S, S) in [0, 1]).
    """
    rgb, alpha, x, target = rgb.float(), alpha.float(), x.float(), target.float()
    rec = recon or (lambda p, t: (p - t).abs().mean())
    out = model.composite(x, rgb, alpha)
    terms = {
        "recon": rec(out, target),
        "self_recon": rec(rgb, target),
        "mask_l1": alpha.mean(),
        "mask_tv": total_variation(alpha),
        "colour": colour_loss(rgb, x),
    }
    if face_mask is not None:
        terms["mask_prior"] = (alpha - face_mask.float()).abs().mean()
    if discriminator is not None:
        terms["adversarial"] = g_loss(kind, discriminator(out))
    if face_net is not None:
        terms["identity"] = identity_loss(face_net, out, target)
    return terms


__all__ = [
    "ADVERSARIAL_KINDS",
    "GanLossConfig",
    "colour_loss",
    "d_loss",
    "g_loss",
    "generator_terms",
    "identity_loss",
    "total_variation",
]
