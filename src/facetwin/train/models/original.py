"""``original``: the 2017 deepfakes autoencoder, layer for layer.

64x64 input; encoder of four 5x5 stride-2 convolutions (128-256-512-1024), a 1024-wide dense
code, a dense layer back to 4x4x1024 and one upscale to 8x8x512; each decoder upscales three
times (256-128-64) and ends in a 5x5 convolution to RGB with a sigmoid.
82,062,470 parameters with both decoders; 3.80 GFLOP per training sample forward (encoder and
one decoder).

Kept exactly so: it is the reference the rest of the toolkit is compared against.
"""

from __future__ import annotations

from facetwin.train.models import ARCHITECTURES
from facetwin.train.models.base import AutoencoderSpec, SwapAutoencoder


@ARCHITECTURES.register("original")
class Original(SwapAutoencoder):
    name = "original"
    summary = "deepfakes 2017 autoencoder, 64 px, 82.06 M parameters"
    default_coverage = 1.0  # the tight central face: at 64 px every pixel goes to the face
    spec = AutoencoderSpec(
        input_size=64,
        encoder_filters=(128, 256, 512, 1024),
        encoder_dim=1024,
        bottleneck_filters=1024,
        encoder_upscale=512,
        decoder_filters=(256, 128, 64),
    )
