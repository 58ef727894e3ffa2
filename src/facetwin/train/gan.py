"""GAN training for the ``gan`` architecture: PatchGAN discriminators, the loss terms, one step.

Why each generator term is there (weights in :class:`GanLossConfig`):

- ``recon``: L1 of the *composited* output (``alpha * rgb + (1 - alpha) * input``) against the
  un-warped target: the main signal, as in every autoencoder swap.
- ``self_recon`` (small): L1 of the *raw* RGB against the target. Convert uses the raw RGB,
  and without this term the RGB may be anything where alpha is near 0.
- ``adversarial``: a per-identity PatchGAN judges 8x8 overlapping patches of the composite; it
  penalises the blur L1 settles for (LSGAN or hinge).
- ``identity``: distance between the dlib face embeddings (:class:`FaceResNet`, frozen) of the
  composite and of the target, so the output is recognisably the right person, not just close
  in pixels.
- ``mask_l1`` and ``mask_tv``: mean alpha and its total variation. Without them alpha drifts to
  1 (drawing everything is never worse for L1); small and smooth masks are what convert needs.
- ``colour``: the raw RGB's mean colour per channel matches the input's, so a swapped face keeps
  the scene's lighting instead of the training set's average.

The adversarial and identity weights ramp up linearly over their warm-up iterations: both are
noisy gradients on a generator that cannot draw a face yet, and early on they only slow down
reconstruction.

:class:`GanStep` is self-contained (its own optimizers, discriminators and iteration count).
Hook the trainer needs to use it: build a ``GanStep`` instead of ``TrainStep`` when the arch is
``gan`` and call ``step(batch["a"], batch["b"])`` per iteration; snapshot and restore
``GanStep.state_dict()`` (the discriminators, both optimizers, the iteration for the warm-up)
alongside the model; report ``recon_a``/``recon_b`` as ``loss_a``/``loss_b``. ``TrainStep`` can
still train the model without these terms (``forward_pair`` returns RGB only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facetwin.errors import UsageError
from facetwin.train.models.base import SIDES
from facetwin.train.models.gan import GanSwap

ADVERSARIAL_KINDS = ("lsgan", "hinge")


class PatchDiscriminator(nn.Module):
    """(N, 3, S, S) in [0, 1] -> (N, 1, S/8, S/8) logits, one per overlapping patch.

    Three 4x4 stride-2 convolutions then a 3x3 one to a single channel: each logit sees a
    ~46 px receptive field, so at 64 px it judges local texture (skin, eyes, teeth), not the
    global layout the reconstruction loss already enforces. No batch norm (the real and fake
    batches are passed separately and would get different statistics); spectral norm instead
    keeps the discriminator Lipschitz, which stabilises training without tuning.
    """

    def __init__(
        self, widths: tuple[int, ...] = (64, 128, 256), spectral_norm: bool = True
    ) -> None:
        super().__init__()

        def wrap(conv: nn.Conv2d) -> nn.Module:
            return nn.utils.parametrizations.spectral_norm(conv) if spectral_norm else conv

        layers: list[nn.Module] = []
        ch = 3
        for w in widths:
            layers += [wrap(nn.Conv2d(ch, w, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            ch = w
        layers.append(wrap(nn.Conv2d(ch, 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # centred input: the same convolutions work for any [0, 1] image without a bias shift
        return self.net(x * 2 - 1)


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
    colour: float = 1.0
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
) -> dict[str, torch.Tensor]:
    """Unweighted generator terms of one identity's batch (all floats in [0, 1]).

    ``adversarial`` is left out without a discriminator, ``identity`` without a face net.
    """
    rgb, alpha, x, target = rgb.float(), alpha.float(), x.float(), target.float()
    out = model.composite(x, rgb, alpha)
    terms = {
        "recon": (out - target).abs().mean(),
        "self_recon": (rgb - target).abs().mean(),
        "mask_l1": alpha.mean(),
        "mask_tv": total_variation(alpha),
        "colour": colour_loss(rgb, x),
    }
    if discriminator is not None:
        terms["adversarial"] = g_loss(kind, discriminator(out))
    if face_net is not None:
        terms["identity"] = identity_loss(face_net, out, target)
    return terms


def as_images(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (the loader's format) or float tensor -> float [0, 1] on ``device``."""
    t = t.to(device)
    return t.float().div_(255) if t.dtype == torch.uint8 else t.float()


class GanStep:
    """One GAN iteration over both identities: a generator step, then a discriminator step.

    ``step(batch_a, batch_b)`` takes the side dicts of :class:`~facetwin.train.data.PairDataset`
    (uint8 ``warped`` and ``target``, NCHW) or float tensors in [0, 1], and returns every term
    per side, the weighted generator total and the discriminator loss, as floats.
    ``face_net`` (usually ``FaceResNet.from_dlib()``) enables the identity term; None skips it.
    """

    def __init__(
        self,
        model: GanSwap,
        cfg: GanLossConfig | None = None,
        face_net: nn.Module | None = None,
        device: torch.device | str = "cpu",
        lr: float = 5e-5,
        d_lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        discriminator_widths: tuple[int, ...] = (64, 128, 256),
    ) -> None:
        self.device = torch.device(device)
        self.cfg = cfg or GanLossConfig()
        self.model = model.to(self.device)
        self.face_net = None if face_net is None else face_net.to(self.device).requires_grad_(False)
        self.discriminators = nn.ModuleDict(
            {s: PatchDiscriminator(discriminator_widths, self.cfg.spectral_norm) for s in SIDES}
        ).to(self.device)
        # a 4x higher discriminator rate (TTUR): it must keep up with the generator to give a
        # useful gradient, and its updates are cheap
        self.g_opt = torch.optim.Adam(self.model.parameters(), lr=lr, betas=betas)
        self.d_opt = torch.optim.Adam(self.discriminators.parameters(), lr=d_lr, betas=betas)
        self.iteration = 0

    def _inputs(self, side: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return as_images(side["warped"], self.device), as_images(side["target"], self.device)

    def step(
        self, batch_a: dict[str, torch.Tensor], batch_b: dict[str, torch.Tensor]
    ) -> dict[str, float]:
        cfg = self.cfg
        weights = cfg.weights(self.iteration)
        use_adv = weights["adversarial"] > 0
        use_id = self.face_net is not None and weights["identity"] > 0
        inputs = {"a": self._inputs(batch_a), "b": self._inputs(batch_b)}
        (ra, aa), (rb, ab) = self.model.forward_rgba_pair(inputs["a"][0], inputs["b"][0])
        outputs = {"a": (ra, aa), "b": (rb, ab)}

        # generator: the discriminators only judge here, so they take no gradient
        self.discriminators.requires_grad_(False)
        stats: dict[str, float] = {}
        g_total = ra.new_zeros((), dtype=torch.float32)
        composites: dict[str, torch.Tensor] = {}
        for s in SIDES:
            x, target = inputs[s]
            rgb, alpha = outputs[s]
            terms = generator_terms(
                self.model,
                self.discriminators[s] if use_adv else None,
                self.face_net if use_id else None,
                x,
                target,
                rgb,
                alpha,
                cfg.adversarial_kind,
            )
            for name, value in terms.items():
                g_total = g_total + weights[name] * value
                stats[f"{name}_{s}"] = float(value.detach())
            composites[s] = self.model.composite(x, rgb, alpha).detach()
        self.g_opt.zero_grad(set_to_none=True)
        g_total.backward()
        self.g_opt.step()
        self.discriminators.requires_grad_(True)
        stats["g_total"] = float(g_total.detach())

        # discriminator: real targets against the (detached) composites
        d_total = torch.zeros((), device=self.device)
        for s in SIDES:
            disc = self.discriminators[s]
            d_side = d_loss(cfg.adversarial_kind, disc(inputs[s][1]), disc(composites[s]))
            d_total = d_total + d_side
            stats[f"d_{s}"] = float(d_side.detach())
        self.d_opt.zero_grad(set_to_none=True)
        d_total.backward()
        self.d_opt.step()

        stats.update({f"w_{k}": v for k, v in weights.items() if k in ("adversarial", "identity")})
        self.iteration += 1
        return stats

    def state_dict(self) -> dict[str, Any]:
        """What a snapshot needs besides the model weights to resume GAN training exactly."""
        return {
            "iteration": self.iteration,
            "discriminators": self.discriminators.state_dict(),
            "g_opt": self.g_opt.state_dict(),
            "d_opt": self.d_opt.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        self.discriminators.load_state_dict(state["discriminators"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])


__all__ = [
    "GanLossConfig",
    "GanStep",
    "PatchDiscriminator",
    "colour_loss",
    "d_loss",
    "g_loss",
    "generator_terms",
    "identity_loss",
    "total_variation",
]
