"""Head pose (yaw, pitch, roll in degrees) from 68 landmarks with OpenCV's solvePnP.

A generic 3-D face (millimetres, x right, y up, z towards the camera; rough adult averages) at six
well-defined landmarks; the camera is a pinhole with focal length = image width. Good to a few
degrees - enough to summarise a face set and to compare a swap with its source.
"""

from __future__ import annotations

import cv2
import numpy as np

_IDX = [30, 8, 36, 45, 48, 54]  # nose tip, chin, eye outer corners, mouth corners
_MODEL = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.0, -63.0, -12.0],
        [-43.0, 32.0, -26.0],
        [43.0, 32.0, -26.0],
        [-28.0, -28.0, -24.0],
        [28.0, -28.0, -24.0],
    ]
)


def head_pose(landmarks: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees; image_size is (height, width)."""
    h, w = image_size
    cam = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], np.float64)
    pts = np.asarray(landmarks, np.float64)[_IDX]
    # image y grows downwards: flip the model's y so the solution is a proper rotation
    model = _MODEL * np.array([1.0, -1.0, -1.0])
    ok, rvec, _ = cv2.solvePnP(model, pts, cam, None, flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        return float("nan"), float("nan"), float("nan")
    rot, _ = cv2.Rodrigues(rvec)
    sy = np.hypot(rot[0, 0], rot[1, 0])
    pitch = np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
    yaw = np.degrees(np.arctan2(-rot[2, 0], sy))
    roll = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
    return float(yaw), float(pitch), float(roll)
