"""68-point landmarks from dlib's shape predictor (iBUG 300-W layout)."""

from __future__ import annotations

import numpy as np

from facetwin.extract.models import shape_predictor_68


def to_rect(box: tuple[float, float, float, float]):  # type: ignore[no-untyped-def]
    import dlib

    x0, y0, x1, y1 = (round(v) for v in box)
    return dlib.rectangle(x0, y0, x1, y1)


def landmarks_68(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(68, 2) float32 landmarks of the face in ``box`` (dlib convention) of an RGB image."""
    shape = shape_predictor_68()(image, to_rect(box))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def box_from_landmarks(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """A dlib-convention box around 68 landmarks (used to follow a face between frames)."""
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    return float(x0), float(y0), float(x1), float(y1)
