"""The shared-encoder / two-decoder autoencoder that every architecture plugin is built from.

The face swap works because the encoder is shared: it must describe both people's faces in one
code (pose, expression, lighting), while each decoder learns to draw one person's face from that
code. Swapping is then "encode a face of A, decode with B's decoder".

A plugin describes its layer widths with an :class:`AutoencoderSpec`; :class:`SwapAutoencoder`
turns a spec into modules, so that the ``original`` and ``lite`` plugins differ only in numbers
and the layer-by-layer FLOP count (used by the benchmark) is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

SIDES = ("a", "b")
LEAK = 0.1


@dataclass(frozen=True)
class AutoencoderSpec:
    """Layer widths of a shared-encoder autoencoder.

    encoder_filters: output channels of the stride-2 5x5 convolutions (one per halving).
    encoder_dim: width of the dense bottleneck (the face code).
    bottleneck_filters: channels of the second dense layer's output, reshaped to the spatial side
        the convolutions left (``code_side``); the encoder upscales it once more.
    encoder_upscale: channels after the encoder's own upscale (the decoders' input channels).
    decoder_filters: channels after each decoder upscale.
    """

    input_size: int
    encoder_filters: tuple[int, ...]
    encoder_dim: int
    bottleneck_filters: int
    encoder_upscale: int
    decoder_filters: tuple[int, ...]
    output_shuffle: int = 1  # >1: the RGB layer is a sub-pixel convolution drawing s x the side

    @property
    def code_side(self) -> int:
        """Spatial side after the stride-2 convolutions (4 for 64 px and four convolutions)."""
        return self.input_size // 2 ** len(self.encoder_filters)

    @property
    def output_size(self) -> int:
        return self.code_side * 2 ** (1 + len(self.decoder_filters)) * self.output_shuffle


class Upscale(nn.Sequential):
    """Conv(4f, 3x3) + LeakyReLU + PixelShuffle(2): doubles the side, ends with ``f`` channels.

    Sub-pixel convolution instead of a transposed convolution: no checkerboard artefacts and
    all the work is one dense 3x3 convolution (fast on every backend).
    """

    def __init__(self, in_ch: int, filters: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, filters * 4, kernel_size=3, padding=1),
            nn.LeakyReLU(LEAK),
            nn.PixelShuffle(2),
        )


class Encoder(nn.Module):
    """Face crop (N, 3, S, S) in [0, 1] -> face code (N, encoder_upscale, 2c, 2c)."""

    def __init__(self, spec: AutoencoderSpec) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = 3
        for f in spec.encoder_filters:
            layers += [nn.Conv2d(ch, f, kernel_size=5, stride=2, padding=2), nn.LeakyReLU(LEAK)]
            ch = f
        self.convs = nn.Sequential(*layers)
        side = spec.code_side
        self.dense = nn.Sequential(
            nn.Flatten(),
            nn.Linear(ch * side * side, spec.encoder_dim),
            nn.Linear(spec.encoder_dim, side * side * spec.bottleneck_filters),
        )
        self.unflatten = nn.Unflatten(1, (spec.bottleneck_filters, side, side))
        self.upscale = Upscale(spec.bottleneck_filters, spec.encoder_upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        # The dense layers see the features in (C, H, W) order whatever the memory format, so a
        # checkpoint means the same thing with and without channels_last.
        x = self.dense(x.contiguous())
        return self.upscale(self.unflatten(x))


def decoder_upscales(spec: AutoencoderSpec) -> tuple[nn.Sequential, int]:
    """The decoder's chain of upscale blocks and the channels it ends with."""
    layers: list[nn.Module] = []
    ch = spec.encoder_upscale
    for f in spec.decoder_filters:
        layers.append(Upscale(ch, f))
        ch = f
    return nn.Sequential(*layers), ch


class Decoder(nn.Module):
    """Face code -> face (N, 3, S, S) in [0, 1] for one identity."""

    def __init__(self, spec: AutoencoderSpec) -> None:
        super().__init__()
        self.upscales, ch = decoder_upscales(spec)
        s = spec.output_shuffle
        if s == 1:
            self.out: nn.Module = nn.Conv2d(ch, 3, kernel_size=5, padding=2)
        else:
            # Sub-pixel RGB: each feature pixel draws an s x s block of output pixels. Detail at
            # s x the side for a few percent more FLOPs, where another upscale block at full
            # width would run its convolutions on s^2 x the pixels.
            self.out = nn.Sequential(
                nn.Conv2d(ch, 3 * s * s, kernel_size=3, padding=1), nn.PixelShuffle(s)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.upscales(x)))


class SwapAutoencoder(nn.Module):
    """Shared encoder plus decoders ``a`` and ``b``. Subclasses set the metadata and ``spec``.

    Metadata (class attributes, read by the registry without building the model):
    ``name``, ``input_size``, ``output_size``, ``default_coverage``, a one-line ``summary``, and
    ``step_kind``: the training step that trains it (a name in ``facetwin.train.step.STEPS``).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    spec: ClassVar[AutoencoderSpec]
    default_coverage: ClassVar[float] = 1.0
    step_kind: ClassVar[str] = "plain"

    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder(self.spec)
        self.decoders = nn.ModuleDict({s: Decoder(self.spec) for s in SIDES})

    @classmethod
    def input_size(cls) -> int:
        return cls.spec.input_size

    @classmethod
    def output_size(cls) -> int:
        return cls.spec.output_size

    def forward(self, x: torch.Tensor, side: str) -> torch.Tensor:
        """Reconstruct ``x`` as identity ``side`` ('a' or 'b')."""
        return self.decoders[side](self.encoder(x))

    def draw(self, x: torch.Tensor, side: str) -> torch.Tensor:
        """The face convert pastes for input ``x`` drawn as ``side``: the plain output here;
        models that predict a mask composite it over ``x`` (see ``GanSwap``)."""
        return self(x, side)

    def swap(self, faces: torch.Tensor, direction: str) -> torch.Tensor:
        """Faces of one identity drawn as the other; see :func:`swap`."""
        return swap(self, faces, direction)

    def forward_pair(self, xa: torch.Tensor, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A through decoder A and B through decoder B, with one encoder pass over both batches.

        One pass at twice the batch keeps the CPU/GPU kernels busier than two half passes, and
        every parameter takes part in the forward, which DistributedDataParallel requires.
        """
        code = self.encoder(torch.cat([xa, xb]))
        ca, cb = code[: len(xa)], code[len(xa) :]
        return self.decoders["a"](ca), self.decoders["b"](cb)


def swap(model: SwapAutoencoder, faces: torch.Tensor, direction: str) -> torch.Tensor:
    """Swap identities: ``direction`` 'a2b' draws faces of A as B (and 'b2a' the reverse).

    ``faces`` is (N, 3, S, S) float in [0, 1] at the model's input size and coverage.
    """
    if direction not in ("a2b", "b2a"):
        raise ValueError(f"direction must be 'a2b' or 'b2a', not {direction!r}")
    return model.draw(faces, direction[-1])


def forward_flops(spec: AutoencoderSpec, decoders: int = 1) -> dict[str, int]:
    """FLOPs (2 x multiply-adds) of one sample's forward pass, layer by layer.

    A training sample goes through the encoder and *one* decoder, hence ``decoders=1``. Biases
    and activations are memory-bound and left out. Training costs about 3x this: the forward,
    the input gradient and the weight gradient are each one product of the same size.
    """
    flops: dict[str, int] = {}
    side, ch = spec.input_size, 3
    for i, f in enumerate(spec.encoder_filters):
        side //= 2
        flops[f"encoder.conv{i}"] = 2 * side * side * f * ch * 25
        ch = f
    flat = ch * side * side
    flops["encoder.dense0"] = 2 * flat * spec.encoder_dim
    flops["encoder.dense1"] = 2 * spec.encoder_dim * side * side * spec.bottleneck_filters
    flops["encoder.upscale"] = (
        2 * side * side * 4 * spec.encoder_upscale * spec.bottleneck_filters * 9
    )
    side, ch = side * 2, spec.encoder_upscale
    for i, f in enumerate(spec.decoder_filters):
        flops[f"decoder.upscale{i}"] = decoders * 2 * side * side * 4 * f * ch * 9
        side, ch = side * 2, f
    if spec.output_shuffle == 1:
        flops["decoder.out"] = decoders * 2 * side * side * 3 * ch * 25
    else:
        flops["decoder.out"] = decoders * 2 * side * side * 3 * spec.output_shuffle**2 * ch * 9
    return flops
