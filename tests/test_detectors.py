"""Face detectors on real photos and video frames (never synthetic faces).

Why these checks: every detector must return boxes in dlib's HOG convention, because all of them
feed the same 68-point landmark model; so we test boxes against dlib-hog and landmarks against
MTCNN's own keypoints, not just "a face was found".
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import dlib
import numpy as np
import pytest

from facetwin.errors import UsageError
from facetwin.extract.detectors import Detection, create_detector
from facetwin.extract.detectors.mtcnn import nms
from facetwin.extract.models import shape_predictor_68

DATA = Path(__file__).parents[1] / "data"


def load_rgb(name: str, max_side: int | None = None) -> np.ndarray:
    """A photo from data/images as RGB uint8, optionally downscaled so its longer side fits."""
    bgr = cv2.imread(str(DATA / "images" / name))
    assert bgr is not None, f"missing test photo {name}"
    if max_side is not None and max(bgr.shape[:2]) > max_side:
        s = max_side / max(bgr.shape[:2])
        bgr = cv2.resize(bgr, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def video_frame(name: str, index: int) -> np.ndarray:
    """Frame ``index`` of a clip in data/video, as RGB uint8."""
    with av.open(str(DATA / "video" / name)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"{name} has no frame {index}")


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def inside(points: np.ndarray, box: tuple[float, ...], grow: float) -> bool:
    """Whether all points lie in ``box`` grown by ``grow`` of its size on every side."""
    x0, y0, x1, y1 = box
    mx, my = grow * (x1 - x0), grow * (y1 - y0)
    xs, ys = points[:, 0], points[:, 1]
    return bool(np.all((xs > x0 - mx) & (xs < x1 + mx) & (ys > y0 - my) & (ys < y1 + my)))


def landmarks68(image: np.ndarray, det: Detection) -> np.ndarray:
    """dlib's 68 points from a detection's box, as the extract pipeline computes them."""
    rect = dlib.rectangle(*(int(round(v)) for v in det.box))
    shape = shape_predictor_68()(image, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=float)


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn")


@pytest.fixture(scope="module")
def hog():
    return create_detector("dlib-hog")


def test_mtcnn_turned_face_gives_good_landmarks(mtcnn) -> None:
    """45-degree yaw: one face, and the 68 points from its box land on it.

    The box mapping uses the nose keypoint as a yaw cue; with centre-only mappings the 68 points'
    eyes and nose drift 0.1-0.35 box sides from MTCNN's keypoints, which the 0.07 bound catches.
    """
    image = load_rgb("45-m7-di-ph.jpg")
    found = mtcnn.detect(image)
    assert len(found) == 1
    det = found[0]
    assert det.points5 is not None and det.points5.shape == (5, 2)

    pts = landmarks68(image, det)
    # Brows, eyes, nose and mouth lie in the box grown by 20%; the jaw contour of a turned face
    # reaches further (its far side runs along the cheek), so all 68 get 30%.
    assert inside(pts[17:], det.box, 0.2)
    assert inside(pts, det.box, 0.3)
    eyes_y, nose_y, mouth_y = pts[36:48, 1].mean(), pts[30, 1], pts[48:68, 1].mean()
    assert eyes_y < nose_y < mouth_y

    # Same features from two independent models: MTCNN's keypoints and dlib's 68 points.
    from_68 = np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])
    gap = np.linalg.norm(from_68 - det.points5, axis=1) / det.width
    assert gap.max() < 0.07, gap


@pytest.mark.parametrize("name", ["single_face.jpg", "fr_obama.jpg"])
def test_mtcnn_box_matches_hog_on_frontal_face(mtcnn, hog, name: str) -> None:
    image = load_rgb(name)
    hog_found = hog.detect(image)
    assert len(hog_found) == 1
    found = sorted(mtcnn.detect(image), key=lambda d: -d.score)
    assert found, "mtcnn found no face"
    # The surest MTCNN face is HOG's face (fr_obama.jpg also holds a 0.77 false alarm on the desk).
    assert iou(found[0].box, hog_found[0].box) > 0.6
    assert inside(found[0].points5, found[0].box, 0.0)


def test_mtcnn_finds_the_group(mtcnn, hog) -> None:
    """multi_face.jpg: 5 people. dlib-hog finds 4 (not the man in sunglasses); MTCNN all 5."""
    image = load_rgb("multi_face.jpg")
    found = mtcnn.detect(image)
    hog_found = hog.detect(image)
    assert len(found) == 5
    assert len(hog_found) == 4
    for h in hog_found:
        assert max(iou(h.box, m.box) for m in found) > 0.5


def test_mtcnn_no_face_in_cartoon_frame(mtcnn) -> None:
    """face_noface.mov turns into a cartoon with no human face after about frame 70."""
    assert mtcnn.detect(video_frame("face_noface.mov", 120)) == []


def test_mtcnn_on_video_frame(mtcnn, hog) -> None:
    image = video_frame("single_face.mp4", 30)
    found, hog_found = mtcnn.detect(image), hog.detect(image)
    assert len(found) == 1 and len(hog_found) == 1
    assert iou(found[0].box, hog_found[0].box) > 0.6


def test_a_face_looked_for_near_its_last_box_keeps_its_keypoints_in_frame_pixels(mtcnn) -> None:
    """Video re-detects a tracked face in a region around its last box. Its keypoints must come
    back in the frame's pixels like the box: in the region's they contradicted every landmark
    fit, and extract dropped 189 of the woman's 472 frames as suspect faces."""
    from facetwin.extract.detect import detect_full, detect_near
    from facetwin.extract.landmarks import MAX_KEYPOINT_DISTANCE, keypoint_distance

    image = video_frame("WolfgangLanger_Pexels.mp4", 300)
    whole = detect_full(mtcnn, image, 1280)[0]
    near = detect_near(mtcnn, image, whole.box)
    assert near is not None and near.points5 is not None and whole.points5 is not None
    assert iou(near.box, whole.box) > 0.7
    assert inside(near.points5, near.box, 0.0)
    assert np.abs(near.points5 - whole.points5).max() < 0.1 * (whole.box[2] - whole.box[0])
    assert keypoint_distance(landmarks68(image, near), near.points5) < MAX_KEYPOINT_DISTANCE


def test_dlib_cnn_finds_face_on_small_photo(hog) -> None:
    """MMOD is slow on big images; at 200 px it takes well under a second."""
    image = load_rgb("0-f1-su-ph.jpg", max_side=200)
    found = create_detector("dlib-cnn").detect(image)
    assert len(found) == 1
    assert iou(found[0].box, hog.detect(image)[0].box) > 0.6


def test_nms_keeps_best_and_drops_nested_in_min_mode() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2]  # the small nested box overlaps little
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [3, 2]


def test_unknown_detector_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        create_detector("nope")


def test_unusable_device_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        create_detector("mtcnn", device="not-a-device")


def test_mtcnn_no_false_alarm_beside_a_real_face(mtcnn) -> None:
    """fr_obama.jpg holds one face; the published O-Net cut-off (0.7) also passed a 0.77-score
    patch beside it. The stricter 0.9 keeps exactly the face."""
    found = mtcnn.detect(load_rgb("fr_obama.jpg"))
    assert len(found) == 1 and found[0].score > 0.99


PHOTOS = sorted(p.name for p in (DATA / "images").glob("*.jpg"))


@pytest.mark.parametrize("name", [n for n in PHOTOS if n != "fr_obama.jpg"])
def test_mtcnn_cut_off_holds_on_photos_it_was_not_tuned_on(mtcnn, hog, name: str) -> None:
    """The 0.9 cut-off was chosen on fr_obama.jpg; on every other bundled photo MTCNN finds
    exactly its people (one each; five in multi_face.jpg, where HOG misses the sunglasses)
    and nothing else, each face well above the cut-off, and on HOG's faces where HOG finds one."""
    image = load_rgb(name)
    found = mtcnn.detect(image)
    assert len(found) == (5 if name == "multi_face.jpg" else 1), [d.score for d in found]
    assert min(d.score for d in found) > 0.99
    for h in hog.detect(image):
        assert max(iou(h.box, m.box) for m in found) > 0.5


def test_a_photo_gets_the_faces_the_second_detector_finds_and_hog_missed(tmp_path: Path) -> None:
    """Default extract on the group photo: HOG's four faces plus the man in sunglasses from
    MTCNN (recorded as found by it), nothing twice; ``photo_detector=""`` gives HOG's four. A
    face set made before the option resumes without it (no faces added to its old photos'
    peers by a second detector it never ran)."""
    from facetwin.extract.pipeline import ExtractConfig, extract
    from facetwin.face.boxes import iou
    from facetwin.faceset import FaceSet

    group = DATA / "images" / "multi_face.jpg"
    extract([group], tmp_path / "both", ExtractConfig(progress=False))
    extract([group], tmp_path / "hog", ExtractConfig(progress=False, photo_detector=""))
    with FaceSet.open(tmp_path / "both") as fs:
        faces = fs.faces()
        assert fs.settings()["photo_detector"] == "mtcnn"
    assert sorted(f.detector for f in faces) == ["dlib-hog"] * 4 + ["mtcnn"]
    boxes = [f.box for f in faces]
    assert all(iou(a, b) < 0.3 for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    with FaceSet.open(tmp_path / "hog") as fs:
        assert len(fs.faces()) == 4 and "photo_detector" not in fs.settings()
    # the HOG-only set, extended by a default run, stays HOG-only (as it was made)
    extract(
        [group, DATA / "images" / "single_face.jpg"],
        tmp_path / "hog",
        ExtractConfig(progress=False),
    )
    with FaceSet.open(tmp_path / "hog") as fs:
        assert "photo_detector" not in fs.settings()
        assert {f.detector for f in fs.faces()} == {"dlib-hog"} and len(fs.faces()) == 5


def test_convert_finds_a_photos_faces_as_extract_does() -> None:
    """Convert without a face set plans a still with the same second detector: the group
    photo's five faces, four with it off."""
    from facetwin.convert.faces import detect_faces
    from facetwin.extract.detect import SecondDetector, second_detector_name

    image = load_rgb("multi_face.jpg")
    hog = create_detector("dlib-hog", "cpu", {})
    both = detect_faces(image, hog, 1280, None, 0.6, SecondDetector("mtcnn", "cpu"))
    alone = detect_faces(image, hog, 1280, None, 0.6, SecondDetector("", "cpu"))
    assert (both.found, alone.found) == (5, 4)
    assert len(both.frames[0]) == 5  # no reference identity: every face is swapped
    assert second_detector_name("dlib-hog", "auto") == "mtcnn"
    assert second_detector_name("dlib-cnn", "auto") == ""  # the user's own choice stands
    assert second_detector_name("mtcnn", "mtcnn") == ""
