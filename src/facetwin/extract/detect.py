"""Finding faces in a whole image or near where a face was: the detection every stage uses
(extract, convert without a face set, eval), with the 2x retry for small frames.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from facetwin.device import resolve_device
from facetwin.errors import InputError
from facetwin.extract.detectors import Detection, Detector, create_detector
from facetwin.face.boxes import iou

log = logging.getLogger(__name__)


SMALL_FRAME = 800  # frames below this longer side get a 2x retry when no face is found
RETRY_MIN_SCORE = 0.1  # a detection of the 2x retry must score this (see detect_full)


def detect_full(det: Detector, image: np.ndarray, max_side: int) -> list[Detection]:
    """Detect on the whole image, shrunk to ``max_side``.

    An image or video frame smaller than 800 px with no face found is tried again at 2x: HOG's
    window is 80 px, so webcam, phone and CCTV frames with 40-80 px faces were invisible to it
    (0 of 120 frames of a 176x144 clip). Measured on the bundled clips shrunk to 117-480 px:
    every face frame found with the retry (faces down to 36 px). Upscaled frames show HOG more
    texture that can pass for a face, so a retry's detection must score ``RETRY_MIN_SCORE``:
    real faces at 117-264 px scored 0.15 or more (HOG's margin), the one false alarm seen on the
    cartoon frames 0.016. The retry costs a second pass only where the first found nothing.
    """
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    found = _detect_scaled(det, image, scale)
    if not found and max(h, w) < SMALL_FRAME:
        found = [d for d in _detect_scaled(det, image, 2.0) if d.score >= RETRY_MIN_SCORE]
    return found


def _scale_box(box: tuple[float, ...], s: float) -> tuple[float, float, float, float]:
    return (box[0] * s, box[1] * s, box[2] * s, box[3] * s)


def _detect_scaled(det: Detector, image: np.ndarray, scale: float) -> list[Detection]:
    if abs(scale - 1.0) < 1e-6:
        return det.detect(image)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=interp)
    return [
        Detection(
            _scale_box(d.box, 1.0 / scale),
            d.score,
            None if d.points5 is None else d.points5 / scale,
        )
        for d in det.detect(small)
    ]


def detect_near(
    det: Detector, image: np.ndarray, box: tuple[float, ...], face_px: float = 110.0
) -> Detection | None:
    """Look for the face last seen at ``box`` in a region around it, scaled so it is ~face_px."""
    h, w = image.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = 1.1 * max(bw, bh)
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
    x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    scale = face_px / max(bw, 1.0)
    roi = image[y0:y1, x0:x1]
    best, best_iou = None, 0.3
    for d in _detect_scaled(det, roi, scale):
        full = (d.box[0] + x0, d.box[1] + y0, d.box[2] + x0, d.box[3] + y0)
        o = iou(full, box)
        if o > best_iou:
            # keypoints too: in the ROI's pixels they would contradict every landmark fit
            points = None if d.points5 is None else d.points5 + np.array([x0, y0], np.float32)
            best, best_iou = Detection(full, d.score, points), o
    return best


#: A second detector's face is new when it overlaps none of the first's this much.
SAME_FACE_IOU = 0.3


def second_detector_name(detector: str, photo_detector: str) -> str:
    """The photo path's second detector ("" for none): ``auto`` is MTCNN behind the default
    ``dlib-hog`` and none behind a detector the user chose (their choice stays exactly that)."""
    name = photo_detector
    if name == "auto":
        name = "mtcnn" if detector == "dlib-hog" else ""
    return "" if name == detector else name


class SecondDetector:
    """The photo path's second opinion (``photo_detector`` of extract and convert): the faces
    it finds that the main detector did not. Made on first use; where it cannot run (its
    weights are not installed) it says so once and the main detector's faces stand alone."""

    def __init__(self, name: str, device: str = "auto", max_side: int = 1280) -> None:
        self.name = name
        self.max_side = max_side
        self.device = device
        self._det: Detector | None = None

    def missed(self, image: np.ndarray, found: list[Detection]) -> list[tuple[Detection, str]]:
        """(detection, detector name) of each face in ``image`` that ``found`` lacks."""
        if not self.name:
            return []
        if self._det is None:
            try:
                device = resolve_device(self.device)
                self._det = create_detector(self.name, device=device, settings={})
            except InputError as e:
                log.warning("photos: no second detector (%s); using the first one's faces", e)
                self.name = ""
                return []
        extra = detect_full(self._det, image, self.max_side)
        new = [d for d in extra if all(iou(d.box, f.box) < SAME_FACE_IOU for f in found)]
        return [(d, self.name) for d in new]
