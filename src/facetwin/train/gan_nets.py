"""The GAN's networks beside the generator (:class:`~facetwin.train.models.gan.GanSwap`): the
per-identity PatchGAN discriminator, and the two modules through which the GAN step runs each
half of an iteration, so that DistributedDataParallel can wrap each half as one forward.

Why the pair modules: DDP (with ``find_unused_parameters`` off, its fast mode) expects every
parameter it wraps to get a gradient from each forward it watches. The generator's forward must
therefore draw both identities in one call (:class:`GeneratorPair`), and the discriminator step
must judge real and fake faces of both identities in one call (:class:`DiscriminatorPair`); the
generator step's own look through the discriminators goes around DDP (they take no gradient
there).
"""

from __future__ import annotations

import torch
from torch import nn

from facetwin.train.models.gan import GanSwap

RgbaPair = tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


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


class GeneratorPair(nn.Module):
    """((rgb_a, alpha_a), (rgb_b, alpha_b)) in one forward: the generator as DDP wraps it."""

    def __init__(self, model: GanSwap) -> None:
        super().__init__()
        self.model = model

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> RgbaPair:
        return self.model.forward_rgba_pair(xa, xb)


class DiscriminatorPair(nn.Module):
    """Both identities' discriminators on real and fake faces in one forward (logits as float:
    the losses are taken in fp32 under autocast). Judged in the order a real, a fake, b real,
    b fake: spectral norm's power iteration advances on every call, so the order is part of
    the result."""

    def __init__(self, discriminators: nn.ModuleDict) -> None:
        super().__init__()
        self.discriminators = discriminators

    def forward(
        self, real_a: torch.Tensor, fake_a: torch.Tensor, real_b: torch.Tensor, fake_b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        da, db = self.discriminators["a"], self.discriminators["b"]
        return da(real_a).float(), da(fake_a).float(), db(real_b).float(), db(fake_b).float()


__all__ = ["DiscriminatorPair", "GeneratorPair", "PatchDiscriminator"]
