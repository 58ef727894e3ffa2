"""dlib's HOG + linear SVM frontal face detector (built into dlib, no model file).

Fast and precise on frontal faces, but it misses faces turned past ~30 degrees: use ``mtcnn``
for profiles. Its sliding window is 80 px, so smaller faces need ``upsample``; the extract
pipeline decides the image scale (it runs detection on reduced frames and in regions around
tracked faces).
"""

from __future__ import annotations

import numpy as np

from facetwin.extract.detectors import DETECTORS
from facetwin.extract.detectors.base import Detection
from facetwin.registry import Setting

#: dlib's own defaults: no upsampling (faces from 80 px), SVM scores above 0
UPSAMPLE = 0
THRESHOLD = 0.0


class DlibHogDetector:
    name = "dlib-hog"

    def __init__(
        self, device: str = "cpu", upsample: int = UPSAMPLE, threshold: float = THRESHOLD
    ) -> None:
        import dlib

        self._det = dlib.get_frontal_face_detector()
        self.upsample = upsample
        self.threshold = threshold

    def detect(self, image: np.ndarray) -> list[Detection]:
        rects, scores, _ = self._det.run(np.ascontiguousarray(image), self.upsample, self.threshold)
        return [
            Detection(box=(r.left(), r.top(), r.right(), r.bottom()), score=float(s))
            for r, s in zip(rects, scores)
        ]


@DETECTORS.register(
    "dlib-hog",
    help="dlib HOG, frontal faces, fast on a CPU",
    settings=(
        Setting(
            "upsample",
            int,
            UPSAMPLE,
            "times the image is doubled before detection: faces down to 80/2^N px are found, "
            "each doubling about 4x slower",
            low=0,
            high=3,
        ),
        Setting(
            "threshold",
            float,
            THRESHOLD,
            "SVM score a face must exceed: lower finds more faces and more false ones",
            low=-2.0,
            high=2.0,
        ),
    ),
)
def _make(
    device: str = "cpu", upsample: int = UPSAMPLE, threshold: float = THRESHOLD
) -> DlibHogDetector:
    return DlibHogDetector(device=device, upsample=upsample, threshold=threshold)
