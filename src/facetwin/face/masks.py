"""Face masks from landmarks, drawn in aligned-crop coordinates.

components: the hull of the jaw line and the eyebrows - the face as the landmarks see it.
extended:   the same hull with the eyebrows lifted towards the hairline (by half the
            eyebrow-to-nose-base distance) so that the forehead is covered too.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetwin.face.align import LEFT_BROW, NOSE, RIGHT_BROW

MASK_KINDS = ("components", "extended")


def _hull_mask(points: np.ndarray, size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_8)
    return mask


def face_mask(landmarks: np.ndarray, size: int, kind: str = "components") -> np.ndarray:
    """uint8 (size, size) mask, 0 or 255, from (68, 2) landmarks in the same pixel frame."""
    pts = np.asarray(landmarks, np.float64)
    if kind == "components":
        return _hull_mask(pts, size)
    if kind == "extended":
        brows = np.concatenate([RIGHT_BROW, LEFT_BROW])
        lift = 0.5 * (pts[NOSE[-1]] - pts[brows].mean(0))  # nose base -> brows direction
        lifted = pts[brows] - lift
        return _hull_mask(np.concatenate([pts, lifted]), size)
    raise ValueError(f"unknown mask kind {kind!r}; choose one of {MASK_KINDS}")
