"""Per-face work of extract: from one detection to everything the face set stores about it.

Separate from the Extractor's loops (:mod:`facetwin.extract.pipeline`) because it is the same for
a photo and a video frame and depends on nothing but the image and the detection: landmarks,
alignment, masks, blur, pose (:func:`analyse_face`), and the :class:`FaceRow` a face becomes.
The loops call :func:`analyse_face` through :mod:`facetwin.extract.pipeline`'s namespace, where
the interrupt tests replace it to raise a Ctrl-C mid-frame.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass

import cv2
import numpy as np

from facetwin.extract.detectors import Detection
from facetwin.extract.landmarkers import FaceAt, Landmarker, LandmarkFit, stored_pose
from facetwin.extract.landmarks import (
    MAX_KEYPOINT_DISTANCE,
    box_towards,
    keypoint_distance,
    landmarks_68,
)
from facetwin.face.align import alignment_matrix, transform_points, warp_face
from facetwin.face.masks import apply_cuts, face_mask
from facetwin.face.pose import head_pose
from facetwin.faceset import FaceRow

#: An embedding as extract holds it: computed, still being computed beside the main loop (a
#: Future), already encoded for the database (bytes), or not there.
Embedding = np.ndarray | Future[np.ndarray] | bytes | None

log = logging.getLogger(__name__)


@dataclass
class FaceData:
    """Everything computed for one face in one frame."""

    det: Detection
    landmarks: np.ndarray
    matrix: np.ndarray
    aligned: np.ndarray
    masks: np.ndarray
    blur: float
    pose: tuple[float, float, float]
    #: the landmarks contradict the detector's keypoints even after a refit (see fit_landmarks):
    #: a face not to store
    suspect: bool = False


def fit_landmarks(
    image: np.ndarray,
    det: Detection,
    landmarker: Landmarker | None = None,
    at: FaceAt | None = None,
) -> tuple[LandmarkFit, bool]:
    """The face's landmarks, checked against the detector's own keypoints where it gives them.

    A landmark model follows the box it is given, so a box misplaced for a turned head put the
    eyes on the cheek without a sign (issue 16). Where the 68 points' eyes, nose and mouth lie
    more than ``MAX_KEYPOINT_DISTANCE`` from the detector's five keypoints, the box is moved
    onto the keypoints and the points fitted again; the face is ``suspect`` (True) if they still
    disagree. ``landmarker`` None: dlib's predictor; ``at``: where a video face is (for landmarkers
    that follow faces over frames).
    """

    def fit(box: tuple[float, float, float, float]) -> LandmarkFit:
        if landmarker is None:
            return LandmarkFit(landmarks_68(image, box))
        return landmarker.fit(image, box, at)

    found = fit(det.box)
    if det.points5 is None or keypoint_distance(found.points, det.points5) <= MAX_KEYPOINT_DISTANCE:
        return found, False
    again = fit(box_towards(det.box, found.points, det.points5))
    suspect = keypoint_distance(again.points, det.points5) > MAX_KEYPOINT_DISTANCE
    if suspect:
        log.warning("landmarks contradict the detector's keypoints at box %s", det.box)
    return again, suspect


def analyse_face(
    image: np.ndarray,
    det: Detection,
    size: int,
    coverage: float,
    landmarker: Landmarker | None = None,
    hands: list[np.ndarray] | None = None,
    at: FaceAt | None = None,
) -> FaceData:
    """Landmarks, alignment, masks, blur and pose of one detected face (``landmarker`` None:
    dlib's predictor; the pose is the landmarker's own where it measures one).

    ``hands``: polygons (image pixels) of the hands found near the face - with a list, even an
    empty one, what they cover and what lies past the frame's edge are cut out of the masks
    (:func:`cut_masks`); None cuts nothing (a face set made without the cuts)."""
    found, suspect = fit_landmarks(image, det, landmarker, at)
    lm = found.points
    m = alignment_matrix(lm, size, coverage)
    aligned = warp_face(image, m, size)
    lm_al = transform_points(lm, m)
    # one grey channel holds both masks (components lies inside extended): 255 components,
    # 128 extended only - half the PNG encoding of two channels
    ext = face_mask(lm_al, size, "extended")
    masks = np.maximum(face_mask(lm_al, size, "components"), (ext > 0).astype(np.uint8) * 128)
    if hands is not None:
        masks = cut_masks(masks, m, image.shape, hands)
    gray = cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY)
    q = size // 4
    blur = float(cv2.Laplacian(gray[q:-q, q:-q], cv2.CV_64F).var())
    pose = found.pose if found.pose is not None else head_pose(lm, image.shape[:2])
    return FaceData(det, lm, m, aligned, masks, blur, pose, suspect)


def cut_masks(
    masks: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...], hands: list[np.ndarray]
) -> np.ndarray:
    """``masks`` (the aligned crop's) with the ``hands`` (polygons in image pixels) and the part
    of the crop past the frame's edge cut out, so that neither training (which leaves both out
    of the loss) nor a mask's reader takes them for face."""
    size = masks.shape[0]
    h, w = shape[:2]
    outside = cv2.warpAffine(
        np.zeros((h, w), np.uint8),
        np.asarray(matrix, np.float64)[:2],
        (size, size),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=255,
    )
    occluder = np.zeros((size, size), np.uint8)
    for poly in hands:
        crop = transform_points(np.asarray(poly, np.float64), matrix)
        cv2.fillPoly(occluder, [np.round(crop).astype(np.int32)], 255, lineType=cv2.LINE_8)
    return apply_cuts(masks, occluder, outside)


def emb_bytes(emb: Embedding) -> bytes | None:
    """``emb`` as the database stores it (float32 bytes), waiting for it if still computing."""
    if isinstance(emb, Future):
        emb = emb.result()
    if emb is None or isinstance(emb, bytes):
        return emb
    return np.asarray(emb, np.float32).tobytes()


def face_row(
    fd: FaceData,
    *,
    source_id: int,
    frame: int,
    face: int,
    file: str,
    track: int,
    detector: str,
    masks: object,
    emb: Embedding,
    emb_frame: int | None,
    landmarks_final: bool,
) -> FaceRow:
    """The row of one analysed face. ``landmarks_final``: its raw landmarks are also its
    smoothed ones (a photo's face); a video's are smoothed along their track when the source
    is finished."""
    yaw, pitch, roll = stored_pose(fd.pose)
    return FaceRow(
        source_id=source_id,
        frame=frame,
        face=face,
        file=file,
        box=fd.det.box,
        score=round(float(fd.det.score), 5),
        landmarks=fd.landmarks,
        landmarks_smooth=fd.landmarks if landmarks_final else None,
        matrix=fd.matrix,
        detector=detector,
        track=track,
        masks=masks,
        embedding=emb,
        embedding_frame=emb_frame,
        blur=round(fd.blur, 4),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
    )
