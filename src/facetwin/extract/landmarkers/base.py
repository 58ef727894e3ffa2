"""The landmarker contract: an RGB image and a detector box in, 68 points (and maybe a pose) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class LandmarkFit:
    """One face's landmarks.

    points: (68, 2) float32 image pixels, iBUG 300-W layout (what alignment and masks expect).
    pose: (yaw, pitch, roll) in degrees relative to the viewing ray when the model measures it
        itself (a 3-D mesh); None means "compute it from ``points``" (facetwin.face.pose).
    """

    points: np.ndarray
    pose: tuple[float, float, float] | None = None


class Landmarker(Protocol):
    """What every landmarker plugin provides."""

    name: str

    def fit(self, image: np.ndarray, box: tuple[float, float, float, float]) -> LandmarkFit:
        """Landmarks of the face in ``box`` (dlib's box convention) of an RGB uint8 image."""
        ...
