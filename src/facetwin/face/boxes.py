"""Face boxes: (x0, y0, x1, y1) in image pixels."""

from __future__ import annotations

import numpy as np

Box = tuple[float, float, float, float]


def landmark_box(landmarks: np.ndarray) -> Box:
    """The tight box around (N, 2) landmarks."""
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    return float(x0), float(y0), float(x1), float(y1)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes: the one overlap measure of
    trackers, detectors and eval."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
