"""``mask``: alpha-blend through the landmark hull, eroded and feathered.

Only the face proper is replaced, and its edge fades over a few pixels of skin, so neither the
crop's square corners nor the generated background show.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetwin.convert.blend import BLENDERS, BlendParams, FacePatch, erode_region, mix


def soft_mask(patch: FacePatch, params: BlendParams) -> np.ndarray:
    """float32 alpha (h, w): the region eroded by ``erode`` and blurred by ``feather``.

    The Gaussian is cut at 2 sigma and the erosion is at least that wide, so the soft edge
    never reaches past the face region (no generated pixels on the background).
    """
    sigma = params.feather * patch.size
    radius = int(np.ceil(2 * sigma)) if sigma >= 0.3 else 0
    hard = erode_region(patch.region, max(params.erode * patch.size, radius))
    alpha = hard.astype(np.float32) / 255.0
    if radius == 0:
        return alpha
    k = 2 * radius + 1
    return cv2.GaussianBlur(alpha, (k, k), sigmaX=sigma, borderType=cv2.BORDER_CONSTANT)


@BLENDERS.register("mask", help="the face mixed in through its feathered landmark mask")
def blend_mask(original: np.ndarray, patch: FacePatch, params: BlendParams) -> np.ndarray:
    """Original and swapped face mixed by the soft hull mask."""
    return mix(original, patch.face, soft_mask(patch, params))
