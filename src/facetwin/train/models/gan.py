"""``gan``: shared encoder, two decoders that each draw RGB *and* an alpha mask (faceswap-GAN).

The decoder's last convolution has four outputs: sigmoid RGB and a sigmoid alpha. Training
composites ``alpha * rgb + (1 - alpha) * input``, so the network may leave pixels it cannot
improve (background, hair edges) to the input and spend its capacity on the face; the alpha it
learns is also a soft, pose-aware blend mask for convert. The adversarial and identity losses
that make up the rest of faceswap-GAN live in :mod:`facetwin.train.gan`.

Convert compatibility: ``forward(x, side)`` returns the raw RGB (N, 3, S, S) in [0, 1], like
every other architecture; :meth:`GanSwap.forward_rgba` gives (rgb, alpha),
:meth:`GanSwap.composite` blends, and :meth:`GanSwap.draw` (what convert and the training
preview call) returns the composite over the input crop. ``forward_pair`` also returns RGB
only, so the plain :class:`~facetwin.train.step.TrainStep` could train it without the GAN terms;
the trainer uses :class:`~facetwin.train.gan.GanStep`.

64x64 in and out. Encoder: the ``original`` one (four 5x5 stride-2 convolutions 128-256-512-
1024, dense 1024, back to 4x4x1024, upscale to 8x8x512). Decoder: upscales 256-128-64, a
residual block at 64 px (two 3x3 convolutions: sharper detail for the same code than the plain
5x5 output conv alone), then a 5x5 convolution to 4 channels. 82,213,384 parameters with both
decoders (encoder 69,662,976, each decoder 6,275,204).
"""

from __future__ import annotations

import torch
from torch import nn

from facetwin.train.models import ARCHITECTURES
from facetwin.train.models.base import (
    LEAK,
    SIDES,
    AutoencoderSpec,
    Encoder,
    SwapAutoencoder,
    decoder_upscales,
)
from facetwin.train.models.original import Original

#: the seed's ``original`` layout, decoders drawing RGB + alpha
GAN_SPEC: AutoencoderSpec = Original.spec


class ResidualBlock(nn.Module):
    """x + Conv3x3(LeakyReLU(Conv3x3(x))), then LeakyReLU: refines detail without new scale."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, kernel_size=3, padding=1)
        self.act = nn.LeakyReLU(LEAK)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.act(self.conv1(x))))


class RGBADecoder(nn.Module):
    """Face code -> (N, 4, S, S): sigmoid RGB in channels 0-2, sigmoid alpha in channel 3."""

    def __init__(self, spec: AutoencoderSpec) -> None:
        super().__init__()
        self.upscales, ch = decoder_upscales(spec)
        self.refine = ResidualBlock(ch)
        self.out = nn.Conv2d(ch, 4, kernel_size=5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.refine(self.upscales(x))))


@ARCHITECTURES.register("gan")
class GanSwap(SwapAutoencoder):
    """Shared encoder plus RGBA decoders ``a`` and ``b``.

    ``spec`` may be given to build narrower variants (tests, experiments); the registered
    ``gan`` architecture uses :data:`GAN_SPEC`.
    """

    name = "gan"
    summary = "faceswap-GAN style: RGB + alpha mask decoders, 64 px, 82.21 M parameters"
    default_coverage = 1.0
    spec = GAN_SPEC
    step_kind = "gan"  # trained by facetwin.train.gan.GanStep

    def __init__(self, spec: AutoencoderSpec | None = None) -> None:
        # SwapAutoencoder.__init__ would build RGB decoders; build the modules here instead.
        nn.Module.__init__(self)
        if spec is not None:
            self.spec = spec  # type: ignore[misc]  # instance attribute shadows the class default
        self.encoder = Encoder(self.spec)
        self.decoders = nn.ModuleDict({s: RGBADecoder(self.spec) for s in SIDES})

    def forward_rgba(self, x: torch.Tensor, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(rgb (N, 3, S, S), alpha (N, 1, S, S)), both in [0, 1], for identity ``side``."""
        out = self.decoders[side](self.encoder(x))
        return out[:, :3], out[:, 3:]

    def forward(self, x: torch.Tensor, side: str) -> torch.Tensor:
        """The raw RGB as identity ``side``: what convert pastes (with its own mask)."""
        return self.forward_rgba(x, side)[0]

    def draw(self, x: torch.Tensor, side: str) -> torch.Tensor:
        """The composite: the drawn face over ``x`` through the predicted alpha (what training
        optimises, so what convert pastes)."""
        rgb, alpha = self.forward_rgba(x, side)
        return self.composite(x, rgb, alpha)

    def forward_rgba_pair(
        self, xa: torch.Tensor, xb: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """((rgb_a, alpha_a), (rgb_b, alpha_b)) with one encoder pass (see forward_pair)."""
        code = self.encoder(torch.cat([xa, xb]))
        oa = self.decoders["a"](code[: len(xa)])
        ob = self.decoders["b"](code[len(xa) :])
        return (oa[:, :3], oa[:, 3:]), (ob[:, :3], ob[:, 3:])

    def forward_pair(self, xa: torch.Tensor, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (ra, _), (rb, _) = self.forward_rgba_pair(xa, xb)
        return ra, rb

    @staticmethod
    def composite(x_input: torch.Tensor, rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """alpha * rgb + (1 - alpha) * x_input: the drawn face over the input where alpha is 1."""
        return alpha * rgb + (1 - alpha) * x_input
