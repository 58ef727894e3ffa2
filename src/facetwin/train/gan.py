"""GAN training for the ``gan`` architectures: one step (generator, then discriminators), its
snapshot state, and its place in the training-step registry.

The parts live beside it and are re-exported here: the loss terms and their weights
(:mod:`~facetwin.train.gan_losses`, whose docstring says why each term is there) and the
discriminator networks (:mod:`~facetwin.train.gan_nets`).

:class:`GanStep` drives one iteration (generator, then discriminators). The trainer builds it
for ``--arch gan`` in place of the plain step: the generator's Adam is the trainer's own (saved
as the snapshot's optimizer), the discriminators and their Adam go into the snapshot as extra
tensor files (:meth:`GanStep.aux_state`), and the reconstruction terms use the trainer's
``--loss`` with the eye/mouth emphasis of :attr:`GanLossConfig.emphasis` (the GAN's expression
guard: the adversarial term alone happily trades a mouth shape for sharper skin).

Under ``torchrun`` (DistributedDataParallel) the generator and the pair of discriminators are
each wrapped, so both optimizers step on gradients averaged over every rank and the ranks stay
bit-identical while each draws its own batches. Every branch that skips a backward pass (a
non-finite generator or discriminator loss) is decided for all ranks at once
(:func:`facetwin.train.ddp.any_flags`); a rank that skipped alone would leave the others waiting
in the gradient all-reduce.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from facetwin.train import ddp
from facetwin.train.gan_losses import (
    ADVERSARIAL_KINDS,
    GanLossConfig,
    colour_loss,
    d_loss,
    g_loss,
    generator_terms,
    identity_loss,
    total_variation,
)
from facetwin.train.gan_nets import DiscriminatorPair, GeneratorPair, PatchDiscriminator
from facetwin.train.losses import LossSpec, compute_loss, parse_loss
from facetwin.train.models.base import SIDES
from facetwin.train.models.gan import GanSwap
from facetwin.train.serialize import flatten_optimizer
from facetwin.train.snapshot_read import load_optimizer
from facetwin.train.step import (
    STEPS,
    Precision,
    StepContext,
    StepOutput,
    apply_gradients,
    autocast,
    to_images,
)

#: The extra tensor files a GAN snapshot holds (see :meth:`GanStep.aux_state`).
GAN_AUX = ("discriminators", "d_optim")
Inputs = dict[str, dict[str, torch.Tensor]]


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
    ``dist``: this process's place in a torchrun job; with more than one rank the generator and
    the discriminators run under DistributedDataParallel (see the module).
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
        dist: ddp.DistInfo | None = None,
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
        self.dist = dist or ddp.DistInfo()
        # what each half's forward runs through: DDP-wrapped under torchrun, else the modules
        self.generator = ddp.wrap(GeneratorPair(self.model), self.dist, self.device)
        self.judge = ddp.wrap(DiscriminatorPair(self.discriminators), self.dist, self.device)

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
        weights = self.cfg.weights(self.iteration)
        self.iteration += 1
        inputs = {"a": self._inputs(batch_a), "b": self._inputs(batch_b)}
        # detached scalars, copied to the host once at the end (one sync per step, not 20)
        values: dict[str, torch.Tensor] = {}
        g_total, composites = self._generator_loss(inputs, weights, values)
        # the finiteness check needs the host anyway; it costs the one sync of the step
        if not self._all_finite(g_total):
            return {**self._host(values, weights), "finite": 0.0}
        apply_gradients(g_total, self.g_opt, self.g_scaler)
        d_total = self._discriminator_loss(inputs, composites, values)
        if self._all_finite(d_total):  # a NaN would poison the discriminator
            apply_gradients(d_total, self.d_opt, self.d_scaler)
        return {**self._host(values, weights), "finite": 1.0}

    def _generator_loss(
        self, inputs: Inputs, weights: dict[str, float], values: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted generator total and each side's (detached) composite for the
        discriminators; every unweighted term lands in ``values``."""
        use_adv = weights["adversarial"] > 0
        use_id = self.face_net is not None and weights["identity"] > 0
        # the discriminators only judge here, so they take no gradient (and, outside DDP's
        # wrapper, start no all-reduce)
        self.discriminators.requires_grad_(False)
        composites: dict[str, torch.Tensor] = {}
        with autocast(self.device, self.precision):
            pair = self.generator(inputs["a"]["warped"], inputs["b"]["warped"])
            g_total = torch.zeros((), device=self.device)
            for s, (rgb, alpha) in zip(SIDES, pair):
                x, target = inputs[s]["warped"], inputs[s]["target"]
                terms = generator_terms(
                    self.model,
                    self.discriminators[s] if use_adv else None,
                    self.face_net if use_id else None,
                    x,
                    target,
                    rgb,
                    alpha,
                    self.cfg.adversarial_kind,
                    self._recon(inputs[s]),
                    inputs[s].get("mask"),
                )
                for name, value in terms.items():
                    g_total = g_total + weights[name] * value.float()
                    values[f"{name}_{s}"] = value.detach().float()
                composites[s] = self.model.composite(x, rgb, alpha).detach()
        values["g_total"] = g_total.detach()
        self.discriminators.requires_grad_(True)
        return g_total, composites

    def _discriminator_loss(
        self, inputs: Inputs, composites: dict[str, torch.Tensor], values: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Both discriminators' loss: real targets against the (detached) composites."""
        with autocast(self.device, self.precision):
            real_a, fake_a, real_b, fake_b = self.judge(
                inputs["a"]["target"], composites["a"], inputs["b"]["target"], composites["b"]
            )
            d_total = torch.zeros((), device=self.device)
            for s, real, fake in (("a", real_a, fake_a), ("b", real_b, fake_b)):
                d_side = d_loss(self.cfg.adversarial_kind, real, fake)
                d_total = d_total + d_side
                values[f"d_{s}"] = d_side.detach()
        return d_total

    def _all_finite(self, total: torch.Tensor) -> bool:
        """Whether ``total`` is finite on every rank (on one process: here)."""
        (bad,) = ddp.any_flags(self.dist, self.device, not bool(torch.isfinite(total.detach())))
        return not bad

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
        (the generator and its optimizer are the snapshot's model and optimizer files). Read
        from the unwrapped modules, so a snapshot of a DDP run has the same keys as any."""
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
        """Inverse of :meth:`aux_state`; ``iteration`` restores the warm-up schedule. Every
        rank loads the same snapshot in place (DDP keeps its references to the parameters)."""
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
        dist=ctx.dist,
    )


__all__ = [
    "ADVERSARIAL_KINDS",
    "GAN_AUX",
    "GanLossConfig",
    "GanStep",
    "PatchDiscriminator",
    "as_images",
    "colour_loss",
    "d_loss",
    "g_loss",
    "generator_terms",
    "identity_loss",
    "total_variation",
]
