"""``poisson``: gradient-domain cloning with ``cv2.seamlessClone``.

The clone keeps the swapped face's gradients and takes its boundary values from the frame, so
lighting and tone flow in from the surroundings and there is no colour step at the edge.

Placement. seamlessClone centres the bounding box of the mask at the point ``p`` it is given.
Tools that pass the centre of the detector's box move the face by the (jittering) offset
between that box and the face, every frame. Here the mask is drawn from the face's (smoothed)
landmarks, and ``p`` is the centre of that mask's bounding box in frame coordinates, so the
clone lands exactly where the warp put the face and moves only as smoothly as the landmarks.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetwin.convert.blend import BLENDERS, BlendParams, FacePatch, erode_region
from facetwin.registry import Setting

#: seamlessClone needs frame pixels all round the mask for its boundary condition.
BORDER = 2

#: ``normal`` keeps the swapped face's own gradients inside the mask; ``mixed`` keeps, at each
#: pixel, the stronger of the face's and the frame's, so the frame's texture (stubble, wrinkles,
#: a shadow's edge) shows through: truer to the frame, less to the model.
CLONE_MODES = {"normal": cv2.NORMAL_CLONE, "mixed": cv2.MIXED_CLONE}


def clone_mask(patch: FacePatch, params: BlendParams) -> np.ndarray:
    """uint8 0/255: the eroded region, kept ``BORDER`` pixels off the ROI's edges."""
    m = erode_region(patch.region, params.erode * patch.size).copy()
    m[:BORDER], m[-BORDER:], m[:, :BORDER], m[:, -BORDER:] = 0, 0, 0, 0
    return m


def clone_centre(mask: np.ndarray) -> tuple[int, int] | None:
    """The ``p`` that makes seamlessClone leave the mask's pixels where they are.

    OpenCV places the mask's bounding rectangle (x, y, w, h) at ``p - (w // 2, h // 2)``; with
    ``p = (x + w // 2, y + h // 2)`` that is (x, y) again. None for an empty mask.
    """
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        return None
    return x + w // 2, y + h // 2


@BLENDERS.register(
    "poisson",
    help="seamless clone (OpenCV Poisson blending)",
    settings=(
        Setting(
            "mode",
            str,
            "normal",
            "whose gradients the clone keeps: the face's (normal) or the stronger of the face's "
            "and the frame's (mixed: the frame's texture shows through)",
            choices=tuple(CLONE_MODES),
        ),
    ),
)
def blend_poisson(
    original: np.ndarray, patch: FacePatch, params: BlendParams, mode: str = "normal"
) -> np.ndarray:
    """Poisson clone of the swapped face into the original, in place (no shift).

    OpenCV solves over the mask's bounding box, not over the mask: the colour correction
    spreads smoothly into the frame around the face, fading to zero at the box's edges. That
    smooth spill is what leaves no seam; cutting it off at the mask would make one.
    """
    mask = clone_mask(patch, params)
    centre = clone_centre(mask)
    if centre is None:
        return original
    # seamlessClone writes into the mask it is given (it inverts it): hand it a copy
    return cv2.seamlessClone(patch.face, original, mask.copy(), centre, CLONE_MODES[mode])
