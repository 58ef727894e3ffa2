"""Occlusion: keep hands, microphones and hair that lie in front of the face in front of it.

A swap pastes the generated face over everything inside the face region, occluders included.
The model itself tells where they are: its *same-identity* reconstruction (the source person's
own decoder on the aligned crop, A -> A) redraws the face it was trained on, but it has never
learnt to draw a hand or a microphone, so it draws face there. Where the crop and that
reconstruction disagree far more than they usually do, something that is not face covers it.

Everything here works in the model's output crop (square, ``size`` pixels) and is pure numpy /
OpenCV: ``occlusion_mask(crop, reconstruction, region, cfg)`` -> float32 ``keep`` in [0, 1],
1 where the swapped face is drawn and 0 where the original frame (the occluder) stays.
Lengths in :class:`OcclusionConfig` are fractions of the crop side, like the blend parameters,
so a setting means the same at every model size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facetwin.face.align import LEFT_EYE, MOUTH, RIGHT_EYE
from facetwin.face.masks import face_mask

#: Lower bounds of the robust scales (Lab delta E; gradient of L per pixel of a 64-px crop):
#: a model that reconstructs the face almost perfectly would otherwise make noise look large.
MIN_COLOUR_SCALE = 2.0
MIN_STRUCTURE_SCALE = 1.0


@dataclass(frozen=True)
class OcclusionConfig:
    """How the occluder mask is found and shaped.

    enabled: run the extra same-identity forward and cut occluders out of the blend.
    threshold: a pixel is occluder where its disagreement exceeds this many times the median
        disagreement inside the face region. The median adapts to how well the model is trained
        (a blurry early model disagrees everywhere, a good one hardly anywhere).
    blur: Gaussian sigma applied to crop and reconstruction before comparing them. The
        reconstruction is blurrier than the frame; without it every eyelash and pore would
        count as disagreement.
    structure_weight: weight of the gradient-magnitude difference against the colour (Lab)
        difference. Skin-coloured occluders (a hand) differ little in colour but add edges
        (fingers) that the smooth reconstructed cheek lacks - but a briefly trained, blurry
        model also lacks the edges of eyes, lashes and teeth. On a 200-iteration ``lite``
        model, 0.25 caught 72 -> 83 % of a pasted hand but cut 4 % (up to 15 %) of clean
        faces, against none at 0.0, so it is off by default; worth raising for sharp models.
    min_area: connected occluder blobs smaller than this fraction of the face region are
        dropped: ordinary differences around eyes, teeth and brows are small and scattered.
    hole_area: holes inside an occluder smaller than this fraction of the region are filled
        (a ring of fingers around a gap in which the model happens to agree).
    open, close: radii of the morphological opening (removes specks and thin bridges) and
        closing (joins the parts of one occluder), fractions of the crop side.
    grow: the occluder is dilated by this much before feathering, so the soft edge falls on
        the face rather than on the occluder (a swapped face smeared over fingertips shows);
        ``grow >= 2 * feather`` puts the whole soft edge outside it.
    feather: Gaussian sigma of the mask's soft edge.
    feature_threshold: the threshold is this many times higher over the eyes
        (:func:`feature_mask`), where a model's own misses concentrate: an eye it draws open
        while it is shut. On a 60-iteration ``lite`` model, shut eyes alone cut 22 % of a
        clean face out at the plain threshold.
    mouth_share: a blob with at least this share of its pixels in the mouth's opening
        (:func:`mouth_mask`) is the model drawing teeth its own way, not an occluder, and is
        dropped; a hand or microphone over the mouth reaches beyond it and stays. Why: the
        threshold is relative to the median disagreement, so the better the model, the more its
        hardest region stands out: the demo's model had the woman's smile cut in 184 of her 472
        frames and a probe with an adversarial term the man's teeth in 30 of his 72, so the
        source's own mouth showed through the swap (none with the guard; docs/convert.md). 0.8
        instead of 0.9 lost more of the woman's real hand (mouth-guard-2026-12-07.json). 1.0
        turns it off.
    hands: also look for hands near each face (``extract/hands.py``: MediaPipe's palm and hand
        landmark networks) and keep their pixels from the frame (:func:`hand_keep`). Needs no
        same-identity decoder, so it works on any model; ~45 ms a face on one core.
    hands_every: in a video, look on every n-th frame, and on every frame while a hand was
        found within the last n (``Swapper.hands_due``); photos are always searched.
    """

    enabled: bool = True
    threshold: float = 2.5
    blur: float = 0.02
    structure_weight: float = 0.0
    min_area: float = 0.03
    hole_area: float = 0.02
    open: float = 0.025
    close: float = 0.04
    grow: float = 0.04
    feather: float = 0.02
    feature_threshold: float = 2.0
    mouth_share: float = 0.9
    hands: bool = True
    hands_every: int = 8


def _disk(radius: float) -> np.ndarray | None:
    r = int(round(radius))
    if r < 1:
        return None
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.3:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """float32 Lab (L in 0..100): delta E is a colour distance that roughly matches the eye,
    so a dark microphone and a pale hand count in proportion to how visible they are."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _gradient(lightness: np.ndarray, size: int) -> np.ndarray:
    """Gradient magnitude of L per pixel of a 64-px crop (so scales do not depend on size)."""
    gx = cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    return cv2.magnitude(gx, gy) * (size / 64.0) / 8.0


def disagreement(
    crop: np.ndarray, reconstruction: np.ndarray, region: np.ndarray, cfg: OcclusionConfig
) -> np.ndarray:
    """float32 (size, size): how many "typical disagreements" each pixel is away from the
    reconstruction - colour (Lab delta E) and structure (gradient magnitude) each divided by
    its median inside ``region``, then weighted. 1.0 is what the model usually gets wrong."""
    size = crop.shape[0]
    sigma = cfg.blur * size
    a = _lab(_blur(crop, sigma))
    b = _lab(_blur(reconstruction, sigma))
    inside = region > 0
    if not inside.any():
        return np.zeros(crop.shape[:2], np.float32)
    diff = a - b
    # A model's tone is often off as a whole (lighting it never saw, early training): that
    # shift is the colour matcher's business, not an occluder, so it is taken out first.
    diff -= np.median(diff[inside], axis=0)
    colour = np.sqrt((diff**2).sum(-1))
    structure = np.abs(_gradient(a[..., 0], size) - _gradient(b[..., 0], size))
    colour /= max(float(np.median(colour[inside])), MIN_COLOUR_SCALE)
    structure /= max(float(np.median(structure[inside])), MIN_STRUCTURE_SCALE)
    w = cfg.structure_weight
    return ((colour + w * structure) / (1.0 + w)).astype(np.float32)


def feature_mask(landmarks_crop: np.ndarray, size: int) -> np.ndarray:
    """bool (size, size): the eyes - an ellipse 1.6 eye-widths wide and 0.9 high around each,
    so a shut eye counts as much as an open one - from 68 landmarks in crop pixels.

    The mouth is left out on purpose: it is where hands and microphones usually are.
    """
    pts = np.asarray(landmarks_crop, np.float64)
    out = np.zeros((size, size), np.uint8)
    for eye in (RIGHT_EYE, LEFT_EYE):
        a, b = pts[eye[0]], pts[eye[3]]  # the corners
        width = float(np.hypot(*(b - a)))
        angle = float(np.degrees(np.arctan2(*(b - a)[::-1])))
        centre = tuple(int(round(v)) for v in pts[eye].mean(0))
        axes = (int(round(0.8 * width)), int(round(0.45 * width)))
        cv2.ellipse(out, centre, axes, angle, 0, 360, 255, -1)
    return out > 0


def mouth_mask(landmarks_crop: np.ndarray, size: int) -> np.ndarray:
    """bool (size, size): the mouth's opening - the hull of the 8 inner-lip points grown by a
    sixth of the mouth's width (what the opening and closing add to a blob of the teeth), from
    68 landmarks in crop pixels. Not the whole lips: the blob of a hand or object over the
    mouth is often no bigger than they are, and with the whole lips her real hand and the pasted
    occluders of tests/test_convert_occlusion.py were dropped too
    (benchmarks/results/mouth-guard-2026-12-07.json)."""
    pts = np.asarray(landmarks_crop, np.float64)[MOUTH]
    out = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(out, cv2.convexHull(np.round(pts[12:]).astype(np.int32)), 255)
    width = float(np.ptp(pts[:, 0]))
    k = _disk(width / 6)
    return (cv2.dilate(out, k) if k is not None else out) > 0


def _fill_small_holes(occluder: np.ndarray, max_area: float) -> np.ndarray:
    """Holes (background components not touching the crop border) up to ``max_area`` pixels
    become occluder: a gap between fingers where the model happens to agree is still hand."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        (occluder == 0).astype(np.uint8), connectivity=4
    )
    h, w = occluder.shape
    out = occluder.copy()
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        touches = x == 0 or y == 0 or x + bw == w or y + bh == h
        if not touches and area <= max_area:
            out[labels == i] = 255
    return out


def _large_blobs(
    occluder: np.ndarray, min_area: float, mouth: np.ndarray | None = None, share: float = 1.0
) -> np.ndarray:
    """Only the connected components of at least ``min_area`` pixels - and, given ``mouth``,
    lying less than ``share`` inside it (one labelling for both tests)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(occluder, connectivity=8)
    area = stats[:, cv2.CC_STAT_AREA]
    keep = area >= min_area
    if mouth is not None and share < 1.0:
        keep &= np.bincount(labels[mouth], minlength=n) < share * area
    keep[0] = False
    return np.where(keep[labels], 255, 0).astype(np.uint8)


def occluder_blobs(
    crop: np.ndarray,
    reconstruction: np.ndarray,
    region: np.ndarray,
    cfg: OcclusionConfig,
    features: np.ndarray | None = None,
    mouth: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 0/255 (size, size): the hard occluder mask inside ``region`` (before feathering).

    Thresholded disagreement (``feature_threshold`` times higher on ``features``, the eyes), opened
    (specks and thin links go), closed (parts of one occluder join), small holes filled, and
    only blobs of at least ``min_area`` of the region kept - and, given ``mouth``
    (:func:`mouth_mask`), not those lying ``mouth_share`` or more inside it.
    """
    size = crop.shape[0]
    inside = region > 0
    area = float(inside.sum())
    if area == 0:
        return np.zeros(crop.shape[:2], np.uint8)
    score = disagreement(crop, reconstruction, region, cfg)
    threshold = np.full(score.shape, cfg.threshold, np.float32)
    if features is not None:
        threshold[np.asarray(features) > 0] *= cfg.feature_threshold
    occ: np.ndarray = np.where((score > threshold) & inside, 255, 0).astype(np.uint8)
    k = _disk(cfg.open * size)
    if k is not None:
        occ = cv2.morphologyEx(occ, cv2.MORPH_OPEN, k)
    k = _disk(cfg.close * size)
    if k is not None:
        # default border: an occluder that leaves the crop is not eaten away at its edge
        occ = cv2.morphologyEx(occ, cv2.MORPH_CLOSE, k)
    occ[~inside] = 0
    occ = _fill_small_holes(occ, cfg.hole_area * area)
    mouth = None if mouth is None else np.asarray(mouth, bool)
    return _large_blobs(occ, cfg.min_area * area, mouth, cfg.mouth_share)


def occlusion_mask(
    crop: np.ndarray,
    reconstruction: np.ndarray,
    region: np.ndarray,
    cfg: OcclusionConfig,
    features: np.ndarray | None = None,
    mouth: np.ndarray | None = None,
) -> np.ndarray:
    """float32 (size, size) in [0, 1]: 1 = draw the swapped face, 0 = occluder, keep the frame.

    crop: the frame's aligned face (RGB uint8, the model's output crop). reconstruction: the
    model's same-identity output for it (same shape). region: the face region in the crop
    (uint8 0/255 or bool); disagreement outside it is ignored and it sets the robust scale and
    the area unit. features (bool, optional; :func:`feature_mask`): the eyes, where a
    higher threshold applies. mouth (bool, optional; :func:`mouth_mask`): blobs lying there
    are the model's misses, not occluders. The occluder is grown by ``grow`` and feathered by
    ``feather`` so that the swapped face fades out just before the occluder's edge.
    """
    size = crop.shape[0]
    occ = occluder_blobs(crop, reconstruction, np.asarray(region), cfg, features, mouth)
    if not occ.any():
        return np.ones(crop.shape[:2], np.float32)
    k = _disk(cfg.grow * size)
    if k is not None:
        occ = cv2.dilate(occ, k)
    keep = 1.0 - occ.astype(np.float32) / 255.0
    return np.clip(_blur(keep, cfg.feather * size), 0.0, 1.0)


def face_keep(
    crop: np.ndarray, reconstruction: np.ndarray, landmarks_crop: np.ndarray, cfg: OcclusionConfig
) -> np.ndarray:
    """:func:`occlusion_mask` of one face, its region, eyes and mouth from its 68 landmarks (crop
    pixels): what convert uses."""
    size = crop.shape[0]
    region = face_mask(landmarks_crop, size, "components")
    eyes, mouth = feature_mask(landmarks_crop, size), mouth_mask(landmarks_crop, size)
    return occlusion_mask(crop, reconstruction, region, cfg, eyes, mouth)


def hand_keep(
    polygons: list[np.ndarray], crop_matrix: np.ndarray, size: int, cfg: OcclusionConfig
) -> np.ndarray:
    """float32 (size, size) keep mask, 0 over the hands: ``polygons`` (image pixels, each a
    hand's grown hull) drawn into the crop of ``crop_matrix`` (image -> crop), feathered the
    way the reconstruction's occluders are, with the soft edge on the face side of the hand."""
    occ = np.zeros((size, size), np.uint8)
    for poly in polygons:
        pts = np.asarray(poly, np.float64) @ crop_matrix[:, :2].T + crop_matrix[:, 2]
        cv2.fillPoly(occ, [np.round(pts).astype(np.int32)], 255, lineType=cv2.LINE_8)
    if not occ.any():
        return np.ones((size, size), np.float32)
    k = _disk(2 * cfg.feather * size)
    grown = cv2.dilate(occ, k) if k is not None else occ
    keep = 1.0 - grown.astype(np.float32) / 255.0
    return np.clip(_blur(keep, cfg.feather * size), 0.0, 1.0)


__all__ = [
    "OcclusionConfig",
    "hand_keep",
    "disagreement",
    "face_keep",
    "feature_mask",
    "mouth_mask",
    "occluder_blobs",
    "occlusion_mask",
]
