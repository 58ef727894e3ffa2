"""Per-face work of extract: from one detection to everything the face set stores about it.

Separate from the Extractor's loops (:mod:`facetwin.extract.pipeline`) because it is the same for
a photo and a video frame and depends on nothing but the image and the detection: landmarks,
alignment, masks, blur, pose (:func:`analyse_face`), and the :class:`FaceRow` a face becomes.
The loops call :func:`analyse_face` through :mod:`facetwin.extract.pipeline`'s namespace, where
the interrupt tests replace it to raise a Ctrl-C mid-frame.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

import cv2
import numpy as np

from facetwin.extract.detectors import Detection
from facetwin.extract.landmarks import landmarks_68
from facetwin.face.align import alignment_matrix, transform_points, warp_face
from facetwin.face.masks import face_mask
from facetwin.face.pose import head_pose
from facetwin.faceset import FaceRow

#: An embedding as extract holds it: computed, still being computed beside the main loop (a
#: Future), already encoded for the database (bytes), or not there.
Embedding = np.ndarray | Future[np.ndarray] | bytes | None


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


def analyse_face(image: np.ndarray, det: Detection, size: int, coverage: float) -> FaceData:
    """Landmarks, alignment, masks, blur and pose of one detected face."""
    lm = landmarks_68(image, det.box)
    m = alignment_matrix(lm, size, coverage)
    aligned = warp_face(image, m, size)
    lm_al = transform_points(lm, m)
    # one grey channel holds both masks (components lies inside extended): 255 components,
    # 128 extended only - half the PNG encoding of two channels
    ext = face_mask(lm_al, size, "extended")
    masks = np.maximum(face_mask(lm_al, size, "components"), (ext > 0).astype(np.uint8) * 128)
    gray = cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY)
    q = size // 4
    blur = float(cv2.Laplacian(gray[q:-q, q:-q], cv2.CV_64F).var())
    return FaceData(det, lm, m, aligned, masks, blur, head_pose(lm, image.shape[:2]))


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
        yaw=round(fd.pose[0], 3),
        pitch=round(fd.pose[1], 3),
        roll=round(fd.pose[2], 3),
    )
