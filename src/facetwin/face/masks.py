"""Face masks from landmarks, drawn in aligned-crop coordinates.

components: the hull of the jaw line and the eyebrows - the face as the landmarks see it.
extended:   the same hull with the eyebrows lifted towards the hairline (by half the
            eyebrow-to-nose-base distance) so that the forehead is covered too.

And the cuts: what covers the face (a hand) or lies past the frame's edge is cut out of both,
in the one stored grey channel (:func:`apply_cuts`, :func:`cut_of`).
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


# -- what is cut out of the face: occluders and the frame's edge ---------------------------------
#
# The stored mask is one grey PNG (``faceset.masks``): 255 components, 128 extended only, 0
# background. A pixel *cut* out of the face holds one of the values below instead - under 128,
# so every reader of the two face masks (``>= 128``, ``== 255``), older ones included, already
# reads it as "not face"; :func:`cut_of` tells which cut it was. Face sets made before the cuts
# hold neither value, so nothing is cut in them.

#: a hand (or another occluder) covers this pixel
OCCLUDER_CUT = 64
#: this pixel lies past the frame's edge: alignment filled it with smeared edge pixels
EDGE_CUT = 32


def apply_cuts(
    masks: np.ndarray, occluder: np.ndarray | None = None, outside: np.ndarray | None = None
) -> np.ndarray:
    """The stored mask ``masks`` (255 / 128 / 0) with ``occluder`` (uint8, > 0 where something
    covers the face) and ``outside`` (> 0 past the frame's edge) cut out of it: those pixels
    hold :data:`OCCLUDER_CUT` / :data:`EDGE_CUT` (the occluder wins where both apply)."""
    out = np.asarray(masks, np.uint8).copy()
    if outside is not None:
        out[np.asarray(outside) > 0] = EDGE_CUT
    if occluder is not None:
        out[np.asarray(occluder) > 0] = OCCLUDER_CUT
    return out


def cut_of(stored: np.ndarray, which: str = "any") -> np.ndarray:
    """uint8 0/255: the pixels of a stored mask cut as ``which`` ('occluder', 'edge' or 'any')."""
    values = {"occluder": (OCCLUDER_CUT,), "edge": (EDGE_CUT,), "any": (OCCLUDER_CUT, EDGE_CUT)}
    if which not in values:
        raise ValueError(f"unknown cut {which!r}; choose one of {sorted(values)}")
    return np.where(np.isin(stored, values[which]), 255, 0).astype(np.uint8)
