"""Blenders: put a swapped face into the frame.

Every blender works on a :class:`FacePatch` - the swapped face already warped back into a
region of interest (ROI) of the frame - and returns the blended ROI. Working on the ROI keeps
the cost proportional to the face, not to the frame, and lets the blenders stay pure functions:
``blend(original_roi, patch, params) -> roi``.

Blend widths are fractions of ``patch.size`` (the side of the model's crop square in frame
pixels), so a face looks the same whatever its size in the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from facetwin.registry import Registry, import_plugins


@dataclass(frozen=True)
class BlendParams:
    """How far the blend edge sits inside the face region and how soft it is.

    erode: the region is shrunk by this fraction of the crop side, so the edge lies on skin
        rather than on the jaw line or the crop border, where the two faces differ most.
    feather: Gaussian sigma of the soft edge (``mask``), same unit. An eroded edge blurred by
        sigma reaches zero about 2 sigma out, so ``erode >= 2 * feather`` keeps the blend inside
        the face region.
    sharpen: unsharp-mask amount applied to the drawn face after it is scaled up into the
        frame (0: none). The decoder draws a 64-128 px face that the frame shows at 150-300 px;
        the bilinear scale-up softens it further (DeepFaceLab's merger offers the same knob).
    """

    erode: float = 0.06
    feather: float = 0.03
    sharpen: float = 0.0


@dataclass(frozen=True)
class FacePatch:
    """One swapped face, warped back into the frame.

    roi: (x0, y0, x1, y1), frame pixels: where the arrays below sit in the frame.
    face: (h, w, 3) uint8, the swapped face inside the model's crop square, the original
        frame outside it (so every blender sees a complete image).
    square: (h, w) float32 in [0, 1], the crop square (soft, anti-aliased edges).
    region: (h, w) uint8 0/255, the face to replace: the landmark hull inside the square.
    size: side of the crop square in frame pixels, the unit of :class:`BlendParams`.
    keep: (h, w) float32 in [0, 1] or None: 0 where something covers the face (a hand, a
        microphone; see ``convert/occlusion.py``) and the original frame must stay in front.
        The swapper puts the original back through it after any blender (:func:`occlude`), so
        blenders need not know about occluders; None is "nothing in front".
    """

    roi: tuple[int, int, int, int]
    face: np.ndarray
    square: np.ndarray
    region: np.ndarray
    size: float
    keep: np.ndarray | None = None


Blender = Callable[[np.ndarray, FacePatch, BlendParams], np.ndarray]

BLENDERS: Registry[Blender] = Registry("blender")


def erode_region(region: np.ndarray, pixels: float) -> np.ndarray:
    """The 0/255 region shrunk by ``pixels`` (an elliptic structuring element, so corners round
    off instead of staying sharp)."""
    r = int(round(pixels))
    if r < 1:
        return region
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.erode(region, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)


def mix(original: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``original * (1 - alpha) + face * alpha`` per pixel, alpha (h, w) float in [0, 1]."""
    a = alpha.astype(np.float32)[..., None]
    out = original.astype(np.float32) * (1.0 - a) + face.astype(np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def occlude(original: np.ndarray, blended: np.ndarray, patch: FacePatch) -> np.ndarray:
    """``blended`` with the original put back where ``patch.keep`` says an occluder is.

    Applied after whichever blender ran, so the occluder stays exactly the frame's, its edge is as
    soft as the keep mask, and a Poisson solve does not treat the occluder's edge as a boundary
    (its colours would bleed into the face around it).
    """
    if patch.keep is None:
        return blended
    return mix(original, blended, patch.keep)


# Every module beside this one is a plugin that registers itself: adding one is adding a file.
import_plugins(__name__)

__all__ = ["BLENDERS", "BlendParams", "Blender", "FacePatch", "erode_region", "mix", "occlude"]
