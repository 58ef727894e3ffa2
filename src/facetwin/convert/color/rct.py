"""``rct``: Reinhard colour transfer - match mean and spread of each Lab channel.

Lab separates lightness from the two colour axes and is roughly perceptually uniform, so moving
each channel's mean and standard deviation there shifts brightness and tint without the hue
casts that the same statistics give in RGB (Reinhard et al., 2001). It fixes global lighting and
skin tone; local shading is left to the blender.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetwin.convert.color import COLOR_MATCHERS, enough_pixels
from facetwin.registry import Setting

#: Bounds on the per-channel gain: a flat, nearly one-colour target (an underexposed frame, a
#: tiny face) would otherwise blow the face's contrast up or flatten it entirely. The default;
#: ``--rct-max-gain G`` makes them (1/G, G).
GAIN_RANGE = (0.5, 2.0)


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


@COLOR_MATCHERS.register(
    "rct",
    help="Lab mean and spread of the face in the frame (Reinhard)",
    settings=(
        Setting(
            "max_gain",
            float,
            GAIN_RANGE[1],
            "most a channel's contrast may be scaled up (or 1/G down) to match the frame's",
            low=1.0,
            high=10.0,
        ),
    ),
)
def match_rct(
    face: np.ndarray, target: np.ndarray, mask: np.ndarray, max_gain: float = GAIN_RANGE[1]
) -> np.ndarray:
    """``face`` with the Lab mean and standard deviation of ``target`` inside ``mask``."""
    if not enough_pixels(mask):
        return face
    src, dst = _lab(face), _lab(target)
    sel = mask.astype(bool)
    mu_s, sd_s = src[sel].mean(0), src[sel].std(0)
    mu_t, sd_t = dst[sel].mean(0), dst[sel].std(0)
    gain = np.clip(sd_t / np.maximum(sd_s, 1e-3), 1.0 / max_gain, max_gain)
    out = (src - mu_s) * gain + mu_t
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
