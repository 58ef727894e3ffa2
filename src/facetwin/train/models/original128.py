"""``original128``: the ``original`` autoencoder's building blocks at 128 px.

Doubling the side adds one halving in front of the encoder and one upscale at the end of each
decoder; everything between (the 4x4 code, the 1024-wide dense layers, the first three
upscales) is the ``original`` layout unchanged. The new layers are the narrowest (64 channels
in, 32 out), because they run at the largest sides: full ``original`` widths there would cost
4x the FLOPs for detail a 128 px face does not need.

:func:`original_spec` builds the same family for any power-of-two side >= 64 (``original_spec(64)``
is exactly ``original``), so a 256 px variant is one more registration.

128x128 input and output, five 5x5 stride-2 convolutions (64-128-256-512-1024), dense 1024,
back to 4x4x1024, upscale to 8x8x512, decoders upscale 256-128-64-32 then RGB with a sigmoid.
82,405,446 parameters with both decoders (encoder 69,863,040, each decoder 6,271,203), only
0.4 % more than ``original``: the dense layers dominate and they are unchanged. 4.88 GFLOP per
training sample forward (encoder + one decoder), 1.28x ``original``'s 3.80.

Default coverage 1.5 rather than 1.0: at 128 px there are pixels to spare for the chin and the
forehead, and a face that includes them blends into the frame with a less visible seam.
"""

from __future__ import annotations

from facetwin.train.models import ARCHITECTURES
from facetwin.train.models.base import AutoencoderSpec, SwapAutoencoder

BASE_SIZE = 64
BASE_ENCODER = (128, 256, 512, 1024)
BASE_DECODER = (256, 128, 64)
MIN_FILTERS = 16


def original_spec(size: int = 128) -> AutoencoderSpec:
    """The ``original`` layout for ``size`` px input and output (a power of two >= 64).

    Each doubling over 64 px prepends a stride-2 convolution and appends a decoder upscale,
    each half as wide as its neighbour (never below 16 channels), so the code stays 4x4 and the
    dense layers (most of the parameters) stay the same size.
    """
    if size < BASE_SIZE or size & (size - 1):
        raise ValueError(f"size must be a power of two >= {BASE_SIZE}, not {size}")
    enc, dec = list(BASE_ENCODER), list(BASE_DECODER)
    while BASE_SIZE * 2 ** (len(enc) - len(BASE_ENCODER)) < size:
        enc.insert(0, max(enc[0] // 2, MIN_FILTERS))
        dec.append(max(dec[-1] // 2, MIN_FILTERS))
    return AutoencoderSpec(
        input_size=size,
        encoder_filters=tuple(enc),
        encoder_dim=1024,
        bottleneck_filters=1024,
        encoder_upscale=512,
        decoder_filters=tuple(dec),
    )


@ARCHITECTURES.register("original128")
class Original128(SwapAutoencoder):
    name = "original128"
    summary = "original at 128 px (+1 conv, +1 upscale), coverage 1.5, 82.41 M parameters"
    default_coverage = 1.5  # room for the chin and forehead at 128 px
    spec = original_spec(128)
