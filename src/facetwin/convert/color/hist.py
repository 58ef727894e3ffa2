"""``hist``: histogram matching per RGB channel, within the face mask.

Where ``rct`` moves two moments, this matches the whole distribution of each channel, so it
also fixes non-linear differences (a clipped highlight, a gamma change). It can exaggerate noise
when the mask holds few pixels, hence the shared minimum in :data:`MIN_PIXELS`.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetwin.convert.color import COLOR_MATCHERS, enough_pixels
from facetwin.registry import Setting

_LEVELS = np.arange(256, dtype=np.float64)


def _cdf(values: np.ndarray, centred: bool = False) -> np.ndarray:
    """Cumulative frequency of each of the 256 levels; ``centred``: at the middle of the level's
    own share, so a level holding many pixels maps to the median of its share of the target,
    not to its top end."""
    counts = np.bincount(values, minlength=256).astype(np.float64)
    cdf = np.cumsum(counts)
    if centred:
        cdf -= counts / 2
    return cdf / max(counts.sum(), 1.0)


def match_channel(src: np.ndarray, dst: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """256-entry lookup table taking the distribution of ``src`` values to that of ``dst``.

    Each source level goes to the target level at the same cumulative frequency (linear
    interpolation between target levels, so the table is monotonic and has no gaps).
    ``strength`` < 1 stops part of the way (each level moves by that fraction), which tames
    the noise a small or patchy mask gives the full match; 1.0 is the full match exactly.
    """
    matched = np.interp(_cdf(src, centred=True), _cdf(dst), _LEVELS)
    return (_LEVELS * (1.0 - strength) + matched * strength).round().astype(np.uint8)


@COLOR_MATCHERS.register(
    "hist",
    help="per-channel histogram matching",
    settings=(
        Setting(
            "strength",
            float,
            1.0,
            "fraction of the way each level moves towards the match (0: the model's colours)",
            low=0.0,
            high=1.0,
        ),
    ),
)
def match_hist(
    face: np.ndarray, target: np.ndarray, mask: np.ndarray, strength: float = 1.0
) -> np.ndarray:
    """``face`` with each channel's histogram inside ``mask`` matched to ``target``'s."""
    if not enough_pixels(mask):
        return face
    sel = mask.astype(bool)
    channels = [
        cv2.LUT(face[..., c], match_channel(face[..., c][sel], target[..., c][sel], strength))
        for c in range(3)
    ]
    return np.dstack(channels)
