"""Hands in front of a face: MediaPipe's palm detector and 21-point hand landmarks, run by OpenCV.

A hand over the face is what the face's landmark hull cannot know about: the aligned face's mask
covers it, training learns it as face, and convert pastes the swapped face over the fingers
(issues 11 and 16). The two networks are MediaPipe's own (``palm_detection_lite.tflite`` and
``hand_landmark_lite.tflite`` from the ``mediapipe`` 0.10.x wheel, Apache 2.0), read by OpenCV's
TFLite importer as the face mesh is (``extract/landmarkers/_mesh.py``): no mediapipe import.

The steps are MediaPipe's hand-tracking graph, written out:

1. **Palm detection** on a square around the face only (:data:`NEIGHBOURHOOD` face sizes, zero
   outside the frame), resized to 192 px: a hand that covers the face lies there, and a palm
   seen at face scale is large in the detector's input. The SSD anchors and box decoding follow
   MediaPipe's ``SsdAnchorsCalculator`` / ``TensorsToDetectionsCalculator`` options for this
   model (:func:`anchors`, :func:`decode`).
2. **Hand crop**: the palm box turned so the wrist -> middle-finger line points up, shifted
   half a box towards the fingers and grown 2.6x (``RectTransformationCalculator``).
3. **21 landmarks** on that 224-px crop; the hand-presence score rejects a palm box that holds
   no hand (a palm detector fires on skin, a face included).
4. **The hand's pixels**: the convex hull of the 21 points, grown by :data:`GROW` palm widths
   (the joints lie on the fingers' centre lines, so the hull alone misses half a finger's width
   on each side and the fingertips' pads).

Cost: the palm network is ~10x the face mesh (~30-45 ms on one loaded core, the landmark
network ~25 ms); see docs/pipeline.md for what extract does with that.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from facetwin.errors import InputError
from facetwin.extract.models import model_file
from facetwin.extract.tflite import run_on_crop
from facetwin.face.align import transform_points

PALM_SIDE = 192
HAND_SIDE = 224
#: The neighbourhood palm detection looks at: this many face sizes, centred on the face.
NEIGHBOURHOOD = 3.0
#: Video searches the one neighbourhood (cost: it runs every 8th frame). A photo is searched
#: again in wider ones, each only where the last found no hand: a hand right in front of a face
#: fills much of the 3-face square, larger than the palm network finds reliably, and is smaller
#: in a wider one. Chosen on the man's frames (found 82 % -> 97 % of pasted hands,
#: benchmarks/bench_occluders.py), reported on the stills.
Scales = tuple[float, ...]
VIDEO_SCALES: Scales = (NEIGHBOURHOOD,)
PHOTO_SCALES: Scales = (NEIGHBOURHOOD, 4.5, 6.0)
PALM_SCORE = 0.5  # MediaPipe's min_detection_confidence default
PRESENCE = 0.5  # MediaPipe's min_tracking_confidence default: a crop that holds a hand
NMS_IOU = 0.3
#: Hull growth in palm widths (index to pinky knuckle), chosen by benchmarks/bench_occluders.py:
#: the smallest that leaves >= 95 % of a pasted hand out of the face mask where it is found.
GROW = 0.4
#: Palm keypoints: 0 the wrist's centre, 2 the middle finger's knuckle (the hand's axis).
WRIST, MIDDLE = 0, 2


@dataclass(frozen=True)
class Hand:
    """One hand found near a face. points: (21, 2) in image pixels (MediaPipe's order: 0 the
    wrist, 1-4 the thumb ... 17-20 the little finger); score: the landmark network's presence;
    polygon: (K, 2) int32, the grown hull - the pixels a mask cuts."""

    points: np.ndarray
    score: float
    polygon: np.ndarray

    def mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """uint8 0/255 of ``shape[:2]``: the hand's polygon filled."""
        out = np.zeros(shape[:2], np.uint8)
        cv2.fillConvexPoly(out, self.polygon, 255, lineType=cv2.LINE_8)
        return out


def _model(folder: str, name: str) -> Path:
    try:
        return model_file("mediapipe", "modules", folder, name)
    except InputError:
        raise InputError(
            f"the hand finder reads MediaPipe's {name}: "
            "pip install --no-deps mediapipe==0.10.21 (only its model files are used)"
        ) from None


@cache
def anchors() -> np.ndarray:
    """(2016, 2) anchor centres in [0, 1]: SsdAnchorsCalculator with the palm model's options
    (4 layers, strides 8, 16, 16, 16, one aspect ratio plus the interpolated scale: 2 anchors
    per cell and layer, layers of one stride sharing a grid; fixed size, so only centres)."""
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        n = PALM_SIDE // stride
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(out)


def decode(scores: np.ndarray, raw: np.ndarray, threshold: float = PALM_SCORE) -> np.ndarray:
    """Palms from the network's outputs: (M, 5 + 14) rows of score, box centre x, y, width,
    height and 7 keypoints x, y, all in [0, 1] of the input, after non-maximum suppression."""
    s = 1.0 / (1.0 + np.exp(-np.clip(scores.reshape(-1).astype(np.float64), -100, 100)))
    keep = np.flatnonzero(s >= threshold)
    if not len(keep):
        return np.zeros((0, 19))
    r = raw.reshape(-1, 18)[keep] / PALM_SIDE
    a = anchors()[keep]
    box = np.concatenate([r[:, :2] + a, r[:, 2:4]], 1)
    kps = (r[:, 4:].reshape(-1, 7, 2) + a[:, None]).reshape(-1, 14)
    rows = np.concatenate([s[keep, None], box, kps], 1)
    rows = rows[np.argsort(-rows[:, 0])]
    chosen: list[np.ndarray] = []
    for row in rows:
        if all(_iou(row[1:5], c[1:5]) <= NMS_IOU for c in chosen):
            chosen.append(row)
    return np.array(chosen)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (cx, cy, w, h) boxes."""
    lo = np.maximum(a[:2] - a[2:] / 2, b[:2] - b[2:] / 2)
    hi = np.minimum(a[:2] + a[2:] / 2, b[:2] + b[2:] / 2)
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    union = float(a[2] * a[3] + b[2] * b[3]) - inter
    return inter / union if union > 0 else 0.0


def neighbourhood(
    box: tuple[float, float, float, float], scale: float = NEIGHBOURHOOD
) -> np.ndarray:
    """2x3 matrix from the palm network's input pixels to image pixels: a square ``scale`` face
    sizes wide, centred on the face ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    side = scale * max(x1 - x0, y1 - y0)
    k = side / PALM_SIDE
    return np.array([[k, 0.0, (x0 + x1 - side) / 2], [0.0, k, (y0 + y1 - side) / 2]])


def hand_crop(palm: np.ndarray, to_image: np.ndarray) -> np.ndarray:
    """2x3 matrix from the landmark network's input pixels to image pixels for one decoded palm
    row: turned so the wrist -> middle knuckle line points up, shifted half a box towards the
    fingers, 2.6x the box's longer side (MediaPipe's palm -> hand rectangle)."""
    k = to_image[0, 0] * PALM_SIDE  # input units [0, 1] -> image pixels (a square input)
    kps = palm[5:].reshape(7, 2)
    d = kps[MIDDLE] - kps[WRIST]
    rotation = np.pi / 2 - np.arctan2(-d[1], d[0])
    rotation = (rotation + np.pi) % (2 * np.pi) - np.pi
    w, h = palm[3] * k, palm[4] * k
    cx = palm[1] * k + to_image[0, 2] + 0.5 * h * np.sin(rotation)
    cy = palm[2] * k + to_image[1, 2] - 0.5 * h * np.cos(rotation)
    side = 2.6 * max(w, h)
    c, s = np.cos(rotation), np.sin(rotation)
    a = np.array([[c, -s], [s, c]]) * (side / HAND_SIDE)
    centre = np.array([cx, cy]) - a @ np.array([HAND_SIDE / 2, HAND_SIDE / 2])
    return np.hstack([a, centre[:, None]])


def hand_polygon(points: np.ndarray, grow: float = GROW) -> np.ndarray:
    """(K, 2) int32: the convex hull of the 21 points, each hull vertex moved ``grow`` palm
    widths away from the hull's centre, plus a ring around every point (so a thin, straight
    finger gets its width on both sides, not only at its ends)."""
    pts = np.asarray(points, np.float64)
    palm = float(np.linalg.norm(pts[5] - pts[17])) or 1.0
    r = grow * palm
    ring = np.stack([np.cos(np.arange(16) * np.pi / 8), np.sin(np.arange(16) * np.pi / 8)], 1)
    grown = (pts[:, None] + r * ring[None]).reshape(-1, 2)
    hull = cv2.convexHull(np.round(grown).astype(np.int32))
    return np.asarray(hull.reshape(-1, 2), np.int32)


class HandFinder:
    """Hands near a face (:meth:`near`). One per thread: an OpenCV net runs one image at a time."""

    def __init__(self, grow: float = GROW) -> None:
        self.palm_net = cv2.dnn.readNetFromTFLite(
            str(_model("palm_detection", "palm_detection_lite.tflite"))
        )
        self.hand_net = cv2.dnn.readNetFromTFLite(
            str(_model("hand_landmark", "hand_landmark_lite.tflite"))
        )
        self.grow = grow

    def palms(self, image: np.ndarray, to_image: np.ndarray) -> np.ndarray:
        """Decoded palm rows (see :func:`decode`) in the square ``to_image`` maps into ``image``."""
        names = ["Identity_1", "Identity"]
        out = run_on_crop(self.palm_net, image, to_image, PALM_SIDE, names, cv2.INTER_AREA)
        scores, raw = out
        return decode(scores, raw)

    def landmarks(self, image: np.ndarray, to_image: np.ndarray) -> tuple[np.ndarray, float]:
        """(21, 2) hand points in image pixels and the presence score, for the hand crop
        ``to_image`` maps into ``image``."""
        names = ["Identity", "Identity_1"]
        pts, flag = run_on_crop(self.hand_net, image, to_image, HAND_SIDE, names)
        xy = np.asarray(pts, np.float64).reshape(21, 3)[:, :2]
        return transform_points(xy, to_image), float(np.ravel(flag)[0])

    def near(
        self,
        image: np.ndarray,
        box: tuple[float, float, float, float],
        scales: Scales = VIDEO_SCALES,
    ) -> list[Hand]:
        """The hands around the face ``box`` (x0, y0, x1, y1, image pixels): searched in a square
        of each of ``scales`` face sizes in turn, up to the first that holds a hand reaching
        into the :data:`NEIGHBOURHOOD` square."""
        hands: list[Hand] = []
        # the NEIGHBOURHOOD square's corners: a wider square also finds hands far from the face
        # (folded arms), which are not occluders
        square = np.array([[0, 0], [PALM_SIDE, PALM_SIDE]], np.float64)
        corner0, corner1 = transform_points(square, neighbourhood(box))
        for scale in scales:
            to_image = neighbourhood(box, scale)
            for palm in self.palms(image, to_image):
                points, score = self.landmarks(image, hand_crop(palm, to_image))
                reaches = np.all(points.max(0) >= corner0) and np.all(points.min(0) <= corner1)
                if score >= PRESENCE and reaches:
                    hands.append(Hand(points, score, hand_polygon(points, self.grow)))
            if hands:
                break
        return hands


def hands_mask(hands: list[Hand], shape: tuple[int, ...]) -> np.ndarray:
    """uint8 0/255 of ``shape[:2]``: every hand's polygon."""
    out = np.zeros(shape[:2], np.uint8)
    for h in hands:
        cv2.fillConvexPoly(out, h.polygon, 255, lineType=cv2.LINE_8)
    return out


__all__ = [
    "GROW",
    "PHOTO_SCALES",
    "VIDEO_SCALES",
    "Scales",
    "Hand",
    "HandFinder",
    "anchors",
    "decode",
    "hand_polygon",
    "hands_mask",
]
