"""The numbers of ``facetwin eval``: small pure functions on landmarks, poses and pixels.

Every function here takes plain numpy arrays (68-point iBUG landmarks in image pixels, RGB uint8
images) and returns floats or arrays, so that each definition in docs/metrics.md maps to one
function that a test can feed a constructed case with a known answer.

Units: landmark distances are fractions of the inter-ocular distance (IOD: outer eye corners,
points 36 and 45, the 300-W convention), so they do not depend on image or face size; angles are
degrees; intensities are 8-bit luma (0..255); colours are CIELAB (L* 0..100, distances = CIE76
delta E).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from facetwin.face.align import INNER, LEFT_EYE, MOUTH, RIGHT_EYE, mean_face, transform_points
from facetwin.face.align import umeyama as _umeyama
from facetwin.face.masks import face_mask

EYE_CORNERS = (36, 45)  # outer eye corners: the 300-W inter-ocular distance
EYES = np.concatenate([RIGHT_EYE, LEFT_EYE])
EXPRESSION_POINTS = np.concatenate([EYES, MOUTH])


# -- geometry --------------------------------------------------------------------------------


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (36, 45): the normaliser of every landmark error."""
    lm = np.asarray(landmarks, np.float64)
    return float(np.linalg.norm(lm[EYE_CORNERS[1]] - lm[EYE_CORNERS[0]]))


@lru_cache(maxsize=1)
def _mean_face_68_index() -> dict[int, int]:
    """68-point index -> row of the 51-point mean face (which holds INNER only)."""
    return {int(k): i for i, k in enumerate(INNER)}


def mean_face_iod() -> float:
    """IOD of the mean face, in its unit coordinates (about 0.76)."""
    idx = _mean_face_68_index()
    mf = mean_face()
    return float(np.linalg.norm(mf[idx[EYE_CORNERS[1]]] - mf[idx[EYE_CORNERS[0]]]))


def to_mean_face(landmarks: np.ndarray) -> np.ndarray:
    """All 68 landmarks mapped by the similarity that best fits their inner 51 to the mean face.

    The fit (Umeyama least squares) removes position, in-plane rotation and scale, so what is
    left is the face's shape: expression, plus what pose does to a 2-D projection.
    """
    lm = np.asarray(landmarks, np.float64)
    return transform_points(lm, _umeyama(lm[INNER], mean_face()))


def expression_error(orig: np.ndarray, swap: np.ndarray) -> dict[str, float]:
    """Mean distance of eye and mouth points of two faces, each aligned to the mean face.

    Normalised by the mean face's IOD, so 0.05 means "on average the eye and mouth points sit 5 %
    of an eye-corner distance apart". Returns ``eyes``, ``mouth`` and ``all`` (the 32 points).
    """
    d = np.linalg.norm(to_mean_face(orig) - to_mean_face(swap), axis=1) / mean_face_iod()
    return {
        "eyes": float(d[EYES].mean()),
        "mouth": float(d[MOUTH].mean()),
        "all": float(d[EXPRESSION_POINTS].mean()),
    }


def wrap_degrees(angle: np.ndarray | float) -> np.ndarray:
    """Angles folded into [-180, 180): a yaw of 179 and one of -179 are 2 degrees apart."""
    return (np.asarray(angle, np.float64) + 180.0) % 360.0 - 180.0


def pose_error(orig: tuple[float, float, float], swap: tuple[float, float, float]) -> np.ndarray:
    """(|d yaw|, |d pitch|, |d roll|, L2 of the three) in degrees; NaN where a pose failed."""
    d = np.abs(wrap_degrees(np.asarray(swap, np.float64) - np.asarray(orig, np.float64)))
    return np.append(d, np.sqrt((d**2).sum()))


def centred_pose_error(signed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(offset, errors): the median signed (yaw, pitch, roll) difference of swap minus original
    over all faces, and each face's L2 error once that offset is taken off.

    Why: a landmark pose estimate reads a face's proportions (nose length, face width) as a
    little pitch or yaw, so a swap that draws the other person's proportions in exactly the
    original's pose still shows a constant difference (11.5 +- 0.7 degrees of pitch, man as
    the woman). The centred error is what is left when the swap follows the head frame by
    frame; the offset is reported beside it, since a model could also truly tilt every face.
    """
    d = wrap_degrees(np.asarray(signed, np.float64).reshape(-1, 3))
    ok = np.all(np.isfinite(d), axis=1)
    if not ok.any():
        return np.full(3, np.nan), np.full(len(d), np.nan)
    offset = np.median(d[ok], axis=0)
    return offset, np.sqrt(((d - offset) ** 2).sum(axis=1))


# -- temporal --------------------------------------------------------------------------------


def consecutive_triples(frames: np.ndarray) -> np.ndarray:
    """Positions i with frames[i-1], frames[i], frames[i+1] consecutive integers.

    A second difference across a gap (a frame with no face) would measure the gap, not jitter.
    """
    f = np.asarray(frames, np.int64)
    if len(f) < 3:
        return np.zeros(0, np.int64)
    ok = (f[1:-1] - f[:-2] == 1) & (f[2:] - f[1:-1] == 1)
    return np.flatnonzero(ok) + 1


def landmark_jitter(frames: np.ndarray, landmarks: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Per-frame jitter of one track: RMS over landmarks of the second temporal difference / norm.

    ``frames`` (T,) frame numbers (sorted), ``landmarks`` (T, K, 2), ``norm`` (T,) the length
    that makes it scale-free (the IOD at that frame). Returns (T,) with NaN where frame t has no
    neighbours on both sides. Smooth head motion has a small second difference (acceleration),
    while frame-to-frame landmark noise of standard deviation s per coordinate gives
    sqrt(12) * s, so the number is dominated by high-frequency shake.
    """
    lm = np.asarray(landmarks, np.float64)
    out = np.full(len(lm), np.nan)
    idx = consecutive_triples(frames)
    if len(idx):
        acc = lm[idx + 1] - 2.0 * lm[idx] + lm[idx - 1]  # (n, K, 2)
        rms = np.sqrt((acc**2).sum(-1).mean(-1))
        out[idx] = rms / np.asarray(norm, np.float64)[idx]
    return out


def intensity_flicker(frames: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Per-frame |m_t - m_(t-1)| of a track's face-region mean intensity; NaN without t-1."""
    f = np.asarray(frames, np.int64)
    m = np.asarray(means, np.float64)
    out = np.full(len(m), np.nan)
    if len(m) > 1:
        ok = np.flatnonzero(f[1:] - f[:-1] == 1) + 1
        out[ok] = np.abs(m[ok] - m[ok - 1])
    return out


def rms(values: np.ndarray) -> float:
    """Root mean square of the finite values (NaN when none): how jitter is pooled over frames."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(np.sqrt((v**2).mean())) if len(v) else float("nan")


def finite_mean(values: np.ndarray) -> float:
    """Mean of the finite values, NaN when there are none."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def ratio(out: float, inp: float) -> float:
    """out / in, NaN when the input is (numerically) zero: a still input has no scale to compare."""
    return (
        float(out / inp) if np.isfinite(inp) and inp > 1e-12 and np.isfinite(out) else float("nan")
    )


# -- pixels ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceRegion:
    """A face's mask and the thin bands either side of its border, in a crop of the image.

    ``rows``/``cols`` place the crop in the image; masks are bool arrays of the crop's shape.
    """

    rows: slice
    cols: slice
    inside: np.ndarray
    band_in: np.ndarray
    band_out: np.ndarray
    centre: tuple[float, float]  # (x, y) of the mask centroid, crop pixels


def face_region(
    landmarks: np.ndarray, shape: tuple[int, ...], band: int = 0, kind: str = "components"
) -> FaceRegion | None:
    """Mask of the face (``face_mask`` of ``kind``) and bands of ``band`` pixels around its border.

    Works on a crop around the face so that the cost does not grow with the frame size; the
    part of a band that falls outside the image is simply absent. None when the face lies
    outside the image.
    """
    h, w = shape[:2]
    pts = np.asarray(landmarks, np.float64)
    if kind == "extended":  # the lifted brows reach about half a face above the landmarks
        lo, hi = pts.min(0), pts.max(0)
        lo = lo - np.array([0.0, 0.6 * (hi[1] - lo[1])])
    else:
        lo, hi = pts.min(0), pts.max(0)
    pad = band + 2
    x0, y0 = (int(max(0, np.floor(v - pad))) for v in lo)
    x1, y1 = int(min(w, np.ceil(hi[0] + pad) + 1)), int(min(h, np.ceil(hi[1] + pad) + 1))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    side = max(x1 - x0, y1 - y0)
    mask = face_mask(pts - (x0, y0), side, kind)[: y1 - y0, : x1 - x0]
    inside = mask > 0
    if not inside.any():
        return None
    if band > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
        band_in = inside & ~(cv2.erode(mask, k, borderType=cv2.BORDER_REPLICATE) > 0)
        band_out = (
            cv2.dilate(mask, k, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        ) & ~inside
    else:
        band_in = band_out = np.zeros_like(inside)
    ys, xs = np.nonzero(inside)
    return FaceRegion(
        slice(y0, y1),
        slice(x0, x1),
        inside,
        band_in,
        band_out,
        (float(xs.mean()), float(ys.mean())),
    )


def luma(image: np.ndarray) -> np.ndarray:
    """8-bit luma (BT.601, as cv2's RGB2GRAY weights) as float64, without rounding."""
    img = np.asarray(image, np.float64)
    return img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114


def mean_luma(image: np.ndarray, region: FaceRegion) -> float:
    """Mean luma inside the face mask: the signal whose frame-to-frame change is flicker."""
    return float(luma(image[region.rows, region.cols])[region.inside].mean())


def sharpness(image: np.ndarray, region: FaceRegion) -> float:
    """Variance of the Laplacian of luma inside the face mask: the usual focus measure.

    A blurry generated face scores far below the real one at the same place; compare the two
    on the same region (their ratio), since the value grows with the face's size in pixels.
    """
    crop = luma(image[region.rows, region.cols]).astype(np.float32)
    lap = cv2.Laplacian(crop, cv2.CV_32F, ksize=1)
    # the mask's outermost pixel ring sees the background through the 3x3 kernel
    inner = cv2.erode(region.inside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    vals = lap[inner if inner.any() else region.inside]
    return float(vals.var())


def to_lab(image: np.ndarray) -> np.ndarray:
    """CIELAB (L* 0..100, a*, b* about -128..127) of an sRGB uint8 image, float32."""
    return cv2.cvtColor(np.asarray(image, np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def mean_lab(image: np.ndarray, region: FaceRegion) -> np.ndarray:
    """(3,) mean L*a*b* inside the face mask."""
    return to_lab(image[region.rows, region.cols])[region.inside].mean(0).astype(np.float64)


def border_color_step(
    image: np.ndarray, region: FaceRegion, sectors: int = 16, min_pixels: int = 8
) -> float:
    """Mean CIE76 delta E between the band just inside and the band just outside the mask border.

    The border is cut into ``sectors`` equal angles around the mask centroid and the two bands
    are compared sector by sector, then the sector distances are averaged: a seam that is darker
    on one side of the face and lighter on the other does not cancel out, as it would if whole
    bands were compared. Sectors with fewer than ``min_pixels`` in either band (the image edge)
    are left out; NaN when none is left.
    """
    if not region.band_in.any() or not region.band_out.any():
        return float("nan")
    lab = to_lab(image[region.rows, region.cols]).reshape(-1, 3).astype(np.float64)
    h, w = region.inside.shape
    ys, xs = np.mgrid[0:h, 0:w]
    ang = np.arctan2(ys - region.centre[1], xs - region.centre[0]).ravel()
    sector = np.minimum(((ang + np.pi) / (2 * np.pi) * sectors).astype(np.int64), sectors - 1)

    def band_means(band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sel = band.ravel()
        n = np.bincount(sector[sel], minlength=sectors).astype(np.float64)
        sums = np.stack(
            [np.bincount(sector[sel], weights=lab[sel, c], minlength=sectors) for c in range(3)], 1
        )
        return sums / np.maximum(n, 1)[:, None], n

    m_in, n_in = band_means(region.band_in)
    m_out, n_out = band_means(region.band_out)
    ok = (n_in >= min_pixels) & (n_out >= min_pixels)
    if not ok.any():
        return float("nan")
    return float(np.linalg.norm(m_in[ok] - m_out[ok], axis=1).mean())


# -- identity --------------------------------------------------------------------------------


def nearer_share(d_near: np.ndarray, d_far: np.ndarray) -> float:
    """Share of faces strictly nearer the first reference than the second (two-way retrieval)."""
    a, b = np.asarray(d_near, np.float64), np.asarray(d_far, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    return float((a[ok] < b[ok]).mean()) if ok.any() else float("nan")
