"""GAN training for the ``gan`` architecture: PatchGAN discriminators, the loss terms, one step.

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

:class:`GanStep` drives one iteration (generator, then discriminators). The trainer builds it
for ``--arch gan`` in place of the plain step: the generator's Adam is the trainer's own (saved
as the snapshot's optimizer), the discriminators and their Adam go into the snapshot as extra
tensor files (:meth:`GanStep.aux_state`), and the reconstruction terms use the trainer's
``--loss`` with the eye/mouth emphasis of :attr:`GanLossConfig.emphasis` (the GAN's expression
guard: the adversarial term alone happily trades a mouth shape for sharper skin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facetwin.errors import UsageError
from facetwin.train.losses import LossSpec, compute_loss, parse_loss
from facetwin.train.models.base import SIDES
from facetwin.train.models.gan import GanSwap
from facetwin.train.step import (
    STEPS,
    Precision,
    StepContext,
    StepOutput,
    apply_gradients,
    autocast,
    to_images,
)

ADVERSARIAL_KINDS = ("lsgan", "hinge")
#: The extra tensor files a GAN snapshot holds (see :meth:`GanStep.aux_state`).
GAN_AUX = ("discriminators", "d_optim")


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
        from dataclasses import fields, replace

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


def as_images(t: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """uint8 (the loader's format) or float tensor -> float [0, 1] on ``device``."""
    if t.dtype == torch.uint8:
        return to_images(t, device, channels_last)
    t = t.to(device).float()
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


class GanStep:
    """One GAN iteration over both identities: a generator step, then a discriminator step.

    ``step(batch_a, batch_b)`` takes the side dicts of :class:`~facetwin.train.data.PairDataset`
    (uint8 ``warped``, ``target``, ``mask``, ``regions``, NCHW) or float tensors in [0, 1], and
    returns every term per side, the weighted generator total and the discriminator loss, as
    floats. Calling the step with a whole batch (``{"a": ..., "b": ...}``) returns a
    :class:`~facetwin.train.step.StepOutput` like :class:`~facetwin.train.step.TrainStep`, so the
    trainer drives both the same way.

    ``face_net`` (usually ``FaceResNet.from_dlib()``) enables the identity term; None skips it.
    ``optimizer`` is the generator's (the trainer's Adam, saved with the model); None makes one.
    ``loss`` is the reconstruction loss spec (eye/mouth emphasis needs the batch's regions).
    A non-finite generator loss skips both updates (the trainer rolls back, as for the others).
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
        optimizer: torch.optim.Optimizer | None = None,
        precision: Precision | None = None,
        channels_last: bool = False,
        loss: LossSpec | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.cfg = cfg or GanLossConfig()
        self.model = model.to(self.device)
        self.face_net = None if face_net is None else face_net.to(self.device).requires_grad_(False)
        self.discriminators = nn.ModuleDict(
            {s: PatchDiscriminator(discriminator_widths, self.cfg.spectral_norm) for s in SIDES}
        ).to(self.device)
        if channels_last:
            self.discriminators.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # a 4x higher discriminator rate (TTUR): it must keep up with the generator to give a
        # useful gradient, and its updates are cheap
        self.g_opt = optimizer or torch.optim.Adam(self.model.parameters(), lr=lr, betas=betas)
        self.d_opt = torch.optim.Adam(self.discriminators.parameters(), lr=d_lr, betas=betas)
        self.precision = precision or Precision()
        self.channels_last = channels_last
        self.loss = loss
        scaled = self.precision.scaler
        self.g_scaler = torch.amp.GradScaler(self.device.type) if scaled else None
        self.d_scaler = torch.amp.GradScaler(self.device.type) if scaled else None
        self.iteration = 0

    #: the Step contract: the GAN's scalers travel in its aux state, not the trainer's
    scaler: torch.amp.GradScaler | None = None
    aux_names: tuple[str, ...] = GAN_AUX

    def _inputs(self, side: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cl = self.channels_last
        out = {k: as_images(side[k], self.device, cl) for k in ("warped", "target")}
        for k in ("mask", "regions", "valid"):
            if k in side:
                out[k] = as_images(side[k], self.device)
        return out

    def _recon(
        self, side: dict[str, torch.Tensor]
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
        if self.loss is None or "mask" not in side or "regions" not in side:
            return None
        spec, mask, regions, valid = self.loss, side["mask"], side["regions"], side.get("valid")
        return lambda pred, target: compute_loss(spec, pred, target, mask, regions, valid)

    def __call__(self, batch: dict[str, Any]) -> StepOutput:
        stats = self.step(batch["a"], batch["b"])
        finite = bool(stats.pop("finite"))
        return StepOutput(stats["recon_a"], stats["recon_b"], finite, stats)

    def step(
        self, batch_a: dict[str, torch.Tensor], batch_b: dict[str, torch.Tensor]
    ) -> dict[str, float]:
        cfg = self.cfg
        weights = cfg.weights(self.iteration)
        self.iteration += 1
        use_adv = weights["adversarial"] > 0
        use_id = self.face_net is not None and weights["identity"] > 0
        inputs = {"a": self._inputs(batch_a), "b": self._inputs(batch_b)}

        # generator: the discriminators only judge here, so they take no gradient
        self.discriminators.requires_grad_(False)
        # detached scalars, copied to the host once at the end (one sync per step, not 20)
        values: dict[str, torch.Tensor] = {}
        composites: dict[str, torch.Tensor] = {}
        with autocast(self.device, self.precision):
            outputs = dict(
                zip(
                    SIDES,
                    self.model.forward_rgba_pair(inputs["a"]["warped"], inputs["b"]["warped"]),
                )
            )
            g_total = torch.zeros((), device=self.device)
            for s in SIDES:
                x, target = inputs[s]["warped"], inputs[s]["target"]
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
                    self._recon(inputs[s]),
                    inputs[s].get("mask"),
                )
                for name, value in terms.items():
                    g_total = g_total + weights[name] * value.float()
                    values[f"{name}_{s}"] = value.detach().float()
                composites[s] = self.model.composite(x, rgb, alpha).detach()
        values["g_total"] = g_total.detach()
        self.discriminators.requires_grad_(True)
        # the finiteness check needs the host anyway; it costs the one sync of the step
        if not bool(torch.isfinite(g_total.detach())):
            return {**self._host(values, weights), "finite": 0.0}
        apply_gradients(g_total, self.g_opt, self.g_scaler)

        # discriminator: real targets against the (detached) composites
        d_total = torch.zeros((), device=self.device)
        with autocast(self.device, self.precision):
            for s in SIDES:
                disc = self.discriminators[s]
                real, fake = disc(inputs[s]["target"]).float(), disc(composites[s]).float()
                d_side = d_loss(cfg.adversarial_kind, real, fake)
                d_total = d_total + d_side
                values[f"d_{s}"] = d_side.detach()
        if bool(torch.isfinite(d_total.detach())):  # a NaN would poison the discriminator
            apply_gradients(d_total, self.d_opt, self.d_scaler)
        return {**self._host(values, weights), "finite": 1.0}

    @staticmethod
    def _host(values: dict[str, torch.Tensor], weights: dict[str, float]) -> dict[str, float]:
        host = torch.stack(list(values.values())).float().cpu().tolist()
        stats = dict(zip(values, host))
        stats.update({f"w_{k}": v for k, v in weights.items() if k in ("adversarial", "identity")})
        return stats

    # -- persistence: the discriminators' part of a snapshot --------------------------------------
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

    def aux_state(self) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
        """The discriminators and their optimizer as safetensors-ready tensor files plus JSON
        (the generator and its optimizer are the snapshot's model and optimizer files)."""
        from facetwin.train.checkpoint import flatten_optimizer

        opt_tensors, opt_meta = flatten_optimizer(self.d_opt.state_dict())
        scalers = {
            name: sc.state_dict()
            for name, sc in (("g", self.g_scaler), ("d", self.d_scaler))
            if sc is not None
        }
        tensors = {"discriminators": dict(self.discriminators.state_dict()), "d_optim": opt_tensors}
        return tensors, {"d_optim": opt_meta, "scalers": scalers}

    def load_aux_state(
        self, tensors: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any], iteration: int
    ) -> None:
        """Inverse of :meth:`aux_state`; ``iteration`` restores the warm-up schedule."""
        from facetwin.train.checkpoint import load_optimizer

        self.discriminators.load_state_dict(tensors["discriminators"])
        load_optimizer(self.d_opt, tensors["d_optim"], meta["d_optim"], "discriminator optimizer")
        for name, sc in (("g", self.g_scaler), ("d", self.d_scaler)):
            if sc is not None and name in meta.get("scalers", {}):
                sc.load_state_dict(meta["scalers"][name])
        self.iteration = iteration

    def resume_at(self, iteration: int) -> None:
        """The warm-ups go on from ``iteration`` (after a rollback to an older snapshot)."""
        self.iteration = iteration


@STEPS.register("gan", help="adversarial + reconstruction + mask terms, two discriminators")
def gan_step(ctx: StepContext) -> GanStep:
    """The adversarial step for models that predict a mask; ``ctx.extra`` is the GanLossConfig."""
    cfg: GanLossConfig = ctx.extra if ctx.extra is not None else GanLossConfig()
    if ctx.dist.enabled:
        raise UsageError("--arch gan trains in one process only (no torchrun/DDP yet)")
    face_net = None
    if cfg.identity > 0:
        from facetwin.extract.face_resnet import FaceResNet

        face_net = FaceResNet.from_dlib()
    assert isinstance(ctx.model, GanSwap)
    return GanStep(
        ctx.model,
        cfg,
        face_net,
        ctx.device,
        betas=ctx.betas,
        optimizer=ctx.optimizer,
        precision=ctx.precision,
        channels_last=ctx.channels_last,
        loss=parse_loss(ctx.loss, cfg.emphasis),
    )


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
