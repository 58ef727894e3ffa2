"""``lite-hd``: ``lite`` that reads a 64 px face and draws it at 128 px.

Why: in the bundled clips a face spans ~150-200 pixels of the frame, so a 64 px output is
stretched 2.5-3x when it is pasted back, and the swap looks soft next to the real skin around it
(the sharpness ratio, swap/original Laplacian variance, was ~0.2). Reading 64 px keeps the
encoder - shared by both identities, the part that must generalise - as cheap as ``lite``'s.
Each decoder ends in a sub-pixel RGB layer (Conv3x3 to 3 x 2 x 2 channels + PixelShuffle(2),
ESPCN-style) instead of ``lite``'s 5x5 RGB convolution, so it draws 128 px for about the FLOPs of
the 64 px layer it replaces; a whole extra upscale block at 128 px measured 2.3x ``lite``'s step
time on a 2-core CPU, this one ~1.05x. The decoder thus learns to restore its own person's
detail: the identity-specific part of the job, where that detail belongs. Training crops the
target at 128 px and shrinks the warped input to 64 px (area averaging).

64 px input, 128 px output; encoder as ``lite`` (32-64-128-256, dense 512, 4x4x256, upscale
128); decoders upscale 64-32-16, then Conv3x3 -> 12 channels, PixelShuffle(2), sigmoid.
7,235,672 parameters with both decoders; 0.257 GFLOP per training sample forward (lite: 0.253).
"""

from __future__ import annotations

from dataclasses import replace

from facetwin.train.models import ARCHITECTURES
from facetwin.train.models.base import SwapAutoencoder
from facetwin.train.models.lite import Lite


@ARCHITECTURES.register("lite-hd")
class LiteHD(SwapAutoencoder):
    name = "lite-hd"
    summary = "lite reading 64 px, drawing 128 px (sub-pixel RGB layer), 7.24 M params (CPU)"
    default_coverage = 1.0
    spec = replace(Lite.spec, output_shuffle=2)
