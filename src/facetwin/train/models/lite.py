"""``lite``: the ``original`` layout at a quarter of the channels, for CPUs and the demo.

Same 64x64 input and structure (four stride-2 5x5 convolutions 32-64-128-256, dense 512, back
to 4x4x256, upscale to 8x8x128; decoders upscale 64-32-16 then RGB). Quarter widths cut the
convolution FLOPs ~16x: 7,234,598 parameters with both decoders (8.8 % of ``original``) and
0.253 GFLOP per training sample forward (encoder + one decoder; 6.7 % of ``original``'s 3.80),
so a few hundred iterations on a laptop CPU already give a recognisable (blurry) swap.
"""

from __future__ import annotations

from facetwin.train.models import ARCHITECTURES
from facetwin.train.models.base import AutoencoderSpec, SwapAutoencoder


@ARCHITECTURES.register("lite")
class Lite(SwapAutoencoder):
    name = "lite"
    summary = "original at 1/4 width, 64 px, 7.23 M parameters (CPU, demo)"
    default_coverage = 1.0
    spec = AutoencoderSpec(
        input_size=64,
        encoder_filters=(32, 64, 128, 256),
        encoder_dim=512,
        bottleneck_filters=256,
        encoder_upscale=128,
        decoder_filters=(64, 32, 16),
    )
