"""Head pose (yaw, pitch, roll in degrees) from 68 landmarks, as the viewer sees the head.

Only the rigid points are used: the four eye corners and the nine nose points. Mouth, chin, lids
and brows move with expression, and a six-point fit that included them read an open mouth as a
head turned 25 degrees (issue 16). The 3-D positions are a generic adult face (millimetres,
x right, y up, z towards the camera, origin at the nose tip) from anthropometric averages; the
nose's depth against the eye corners is what yaw and pitch are read from.

The fit is OpenCV's SQPnP (global, no initial guess) refined by Levenberg-Marquardt, with a
pinhole camera whose focal length is the image's longer side. The rotation is then expressed
relative to the ray from the camera to the face, so a face that looks straight at the camera
reads yaw 0 wherever it is in the frame (otherwise a face at the edge reads the ray's angle).
"""

from __future__ import annotations

import cv2
import numpy as np

RIGID = [36, 39, 42, 45, 27, 28, 29, 30, 31, 32, 33, 34, 35, 0, 1, 15, 16]
_MODEL = np.array(
    [
        [-45.0, 33.0, -40.0],  # 36 outer corner of the eye on the image's left
        [-16.0, 34.0, -25.0],  # 39 inner corner
        [16.0, 34.0, -25.0],  # 42 inner corner of the other eye
        [45.0, 33.0, -40.0],  # 45 outer corner
        [0.0, 36.0, -22.0],  # 27 nasion
        [0.0, 24.0, -14.0],  # 28 nose ridge
        [0.0, 12.0, -7.0],  # 29
        [0.0, 0.0, 0.0],  # 30 nose tip
        [-15.0, -5.0, -19.0],  # 31 wing of the nose
        [-8.0, -8.0, -15.0],  # 32
        [0.0, -9.0, -13.0],  # 33 base of the columella
        [8.0, -8.0, -15.0],  # 34
        [15.0, -5.0, -19.0],  # 35
        [-72.0, 28.0, -95.0],  # 0
        [-70.0, 6.0, -92.0],  # 1
        [70.0, 6.0, -92.0],  # 15
        [72.0, 28.0, -95.0],  # 16
    ]
)
# image y grows downwards and the camera looks along +z: flip y and z for a proper rotation
_OBJECT = _MODEL * np.array([1.0, -1.0, -1.0])


def camera_matrix(image_size: tuple[int, int]) -> np.ndarray:
    """A pinhole camera for an image of (height, width): focal length = the longer side."""
    h, w = image_size
    f = float(max(h, w))
    return np.array([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]])


def view_rotation(tvec: np.ndarray) -> np.ndarray:
    """The rotation that turns the camera's axis onto the ray towards ``tvec``."""
    ray = np.asarray(tvec, np.float64).ravel()
    ray = ray / np.linalg.norm(ray)
    axis = np.cross([0.0, 0.0, 1.0], ray)
    s = float(np.linalg.norm(axis))
    if s < 1e-12:
        return np.eye(3)
    rot, _ = cv2.Rodrigues(axis / s * np.arctan2(s, ray[2]))
    return np.asarray(rot)


def euler_degrees(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of a rotation matrix, in degrees (yaw about y, pitch x, roll z)."""
    sy = np.hypot(rot[0, 0], rot[1, 0])
    pitch = np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
    yaw = np.degrees(np.arctan2(-rot[2, 0], sy))
    roll = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
    return float(yaw), float(pitch), float(roll)


def head_pose(landmarks: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees relative to the viewing ray; image_size is (height, width).

    NaNs when the fit fails (degenerate landmarks).
    """
    cam = camera_matrix(image_size)
    pts = np.ascontiguousarray(np.asarray(landmarks, np.float64)[RIGID])
    if not np.all(np.isfinite(pts)) or np.ptp(pts[:, 0]) < 1e-6:
        return float("nan"), float("nan"), float("nan")
    ok, rvec, tvec = cv2.solvePnP(_OBJECT, pts, cam, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok or tvec[2, 0] <= 0:
        return float("nan"), float("nan"), float("nan")
    rvec, tvec = cv2.solvePnPRefineLM(_OBJECT, pts, cam, None, rvec, tvec)
    rot, _ = cv2.Rodrigues(rvec)
    return euler_degrees(view_rotation(tvec).T @ rot)
