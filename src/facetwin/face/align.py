"""Alignment: a similarity transform of a face's inner landmarks onto facetwin's mean face.

Coordinates
-----------
The mean face (``mean_face.json``, made by ``scripts/make_mean_face.py`` from the bundled faces)
holds the 51 inner 68-point landmarks (eyebrows, eyes, nose, mouth) in unit coordinates: they span
[0, 1] on their longer axis and are centred on (0.5, 0.5).

*Coverage* is the side of an aligned crop in units of that extent: 1.0 is the seed's tight
"central face" (eyebrows to lower lip), about 2.0 is a full face with chin and forehead. Because
the mean face is centred, a crop at a smaller coverage is a centre crop of one at a larger
coverage (:func:`recrop`), so a face set stored wide serves any model coverage.

Every transform is a 2x3 matrix mapping source-image pixels to aligned-crop pixels; keeping it
lets convert paste a face back exactly.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

INNER = np.arange(17, 68)  # eyebrows, nose, eyes, mouth: stable under expression and pose
JAW = np.arange(0, 17)
RIGHT_BROW, LEFT_BROW = np.arange(17, 22), np.arange(22, 27)
NOSE = np.arange(27, 36)
RIGHT_EYE, LEFT_EYE = np.arange(36, 42), np.arange(42, 48)
MOUTH = np.arange(48, 68)


@lru_cache(maxsize=1)
def mean_face() -> np.ndarray:
    """The (51, 2) mean inner-landmark template in unit coordinates."""
    data = json.loads((Path(__file__).with_name("mean_face.json")).read_text())
    return np.asarray(data["inner_points"], dtype=np.float64)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, shift) taking src to dst.

    Umeyama (1991), closed form. OpenCV's estimateAffinePartial2D fits robustly (RANSAC/LMedS),
    which is neither exact least squares nor deterministic on few points; we need both.
    Returns a 2x3 matrix M with dst ~= src @ M[:, :2].T + M[:, 2].
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_s = (s0**2).sum() / len(src)
    scale = (sig * d).sum() / var_s if var_s > 0 else 1.0
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def template_pixels(size: int, coverage: float) -> np.ndarray:
    """Mean-face inner points in the pixels of a ``size`` crop at ``coverage``."""
    return ((mean_face() - 0.5) / coverage + 0.5) * size


def alignment_matrix(landmarks: np.ndarray, size: int, coverage: float) -> np.ndarray:
    """2x3 matrix from image pixels to the aligned crop (size x size at coverage)."""
    return umeyama(np.asarray(landmarks)[INNER], template_pixels(size, coverage))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    pts = np.asarray(points, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of ``outer(inner(x))``."""
    a = np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]])
    return a[:2]


def warp_face(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the aligned face out of ``image``.

    Area interpolation would be better for strong downscaling, but warpAffine has none; faces are
    rarely more than 2x larger than the crop, where bilinear is fine.
    """
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def recrop_matrix(size: int, from_coverage: float, out_size: int, to_coverage: float) -> np.ndarray:
    """2x3 matrix from a crop (size, from_coverage) to a centred crop (out_size, to_coverage)."""
    scale = out_size * from_coverage / (size * to_coverage)
    shift = out_size / 2 - scale * size / 2
    return np.array([[scale, 0.0, shift], [0.0, scale, shift]])


def recrop(
    aligned: np.ndarray, from_coverage: float, to_coverage: float, out_size: int
) -> np.ndarray:
    """Centre crop of an aligned face at a smaller coverage, resized to ``out_size``.

    Wider-than-stored coverage cannot be made up and raises ValueError.
    """
    if to_coverage > from_coverage + 1e-6:
        raise ValueError(f"coverage {to_coverage} is wider than the stored {from_coverage}")
    size = aligned.shape[0]
    side = size * to_coverage / from_coverage
    lo = (size - side) / 2
    if abs(lo - round(lo)) < 1e-6 and abs(side - round(side)) < 1e-6:
        crop = aligned[round(lo) : round(lo + side), round(lo) : round(lo + side)]
        interp = cv2.INTER_AREA if out_size < side else cv2.INTER_CUBIC
        return cv2.resize(crop, (out_size, out_size), interpolation=interp)
    m = recrop_matrix(size, from_coverage, out_size, to_coverage)
    return cv2.warpAffine(aligned, m, (out_size, out_size), flags=cv2.INTER_LINEAR)
