"""dlib's 68-point shape predictor (shape_predictor_68_face_landmarks.dat, trained on iBUG 300-W).

An ensemble of regression trees: ~1 ms a face on one CPU core. Its points follow the box, so a
box placed badly for a turned head gives points off the face (see landmarks.box_agreement).
"""

from __future__ import annotations

import numpy as np

from facetwin.extract.landmarkers import LANDMARKERS
from facetwin.extract.landmarkers.base import FaceAt, LandmarkFit
from facetwin.extract.landmarks import landmarks_68


class DlibLandmarker:
    name = "dlib"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device  # dlib-bin is CPU only

    def fit(
        self, image: np.ndarray, box: tuple[float, float, float, float], at: FaceAt | None = None
    ) -> LandmarkFit:
        return LandmarkFit(landmarks_68(image, box))


@LANDMARKERS.register("dlib", help="dlib's 68-point predictor, ~1 ms a face")
def _make(device: str = "cpu") -> DlibLandmarker:
    return DlibLandmarker(device)
