"""facetwin.eval: constructed swaps with known answers, on a real clip, plus the pure metrics.

The "swaps" are the original clip (the first 30 frames of single_face.mp4) changed in ways whose
effect on each number is known: itself, a constant brightness shift, a brightness that alternates
frame by frame, a constant pixel offset. The clip's values are first squeezed into 16..235 so
that no shift clips, and every clip is written losslessly (H.264 RGB, crf 0): the arithmetic then
holds exactly and dlib's detector and landmarks, which look at intensity differences only, see
the same face.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import MAN, FixedFace
from facetwin.errors import InputError, NoFaceError, UsageError
from facetwin.eval import EvalConfig, evaluate
from facetwin.eval import metrics as M
from facetwin.eval.pipeline import clean_json
from facetwin.eval.references import faceset_mean
from facetwin.eval.svg import histogram, line_plot
from facetwin.faceset import FaceSet
from facetwin.media.video import iter_frames
from facetwin.model_meta import FORMAT

FRAMES = 30
SHIFT = 12  # brightness step, 8-bit levels
OFFSET = (7, 5)  # pixels (x, y)
DATA_IMAGES = Path(__file__).resolve().parents[1] / "data" / "images"


def write_video(path: Path, frames: list[np.ndarray], fps: int = 30) -> Path:
    """Lossless RGB H.264, so that a decoded frame equals the array written."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264rgb", rate=fps)
        s.width, s.height = frames[0].shape[1], frames[0].shape[0]
        s.pix_fmt = "rgb24"
        s.options = {"crf": "0", "preset": "ultrafast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def cfg(**kw: object) -> EvalConfig:
    """Quiet, and embeddings (the slow part) on every 10th frame unless a test needs them all."""
    kw.setdefault("embed_every", 10)
    return EvalConfig(progress=False, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval_clips")
    raw = [f for i, f in iter_frames(MAN) if i < FRAMES]
    orig = [(16 + (f.astype(np.uint16) * 219 + 127) // 255).astype(np.uint8) for f in raw]
    h, w = orig[0].shape[:2]
    move = np.float64([[1, 0, OFFSET[0]], [0, 1, OFFSET[1]]])
    grey = np.full_like(orig[0], 128)
    made = {
        "original": orig,
        "bright": [f + SHIFT for f in orig],
        "alternating": [f + SHIFT * (i % 2) for i, f in enumerate(orig)],
        "offset": [cv2.warpAffine(f, move, (w, h), borderMode=cv2.BORDER_REPLICATE) for f in orig],
        "grey": [grey] * FRAMES,
        "small": [cv2.resize(f, (w // 2, h // 2)) for f in orig[:5]],
    }
    return {k: write_video(root / f"{k}.mp4", v) for k, v in made.items()}


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg
    return msg


# -- end to end on the real clip -------------------------------------------------------------


def test_self_vs_self(clips, faceset_man, faceset_woman, tmp_path):
    """The original against itself, A = the man's face set, B = the woman's: every face is
    retrieved as A, nothing moved, and every ratio is exactly 1."""
    out = tmp_path / "report"
    r = evaluate(
        clips["original"],
        clips["original"],
        faceset_a=faceset_man,
        faceset_b=faceset_woman,
        output_dir=out,
        cfg=cfg(embed_every=1),
    )
    ident, att, tmp, bl = r["identity"], r["attributes"], r["temporal"], r["blending"]
    assert r["frames"] == {
        "compared": FRAMES,
        "faces": FRAMES,
        "swap_found": FRAMES,
        "swap_found_rate": 1.0,
    }
    assert ident["swap_faces_embedded"] == FRAMES
    assert ident["id_retrieval_a"] == 1.0 and ident["id_retrieval"] == 0.0
    assert ident["original_id_retrieval_a"] == 1.0
    assert ident["swap_to_original_mean"] == 0.0
    assert ident["swap_to_a_mean"] < 0.4 < ident["swap_to_b_mean"]
    assert att["pose_error_mean"] == 0.0 and att["expression_error_mean"] == 0.0
    assert tmp["landmark_jitter_ratio"] == 1.0 and tmp["shape_jitter_ratio"] == 1.0
    assert tmp["flicker_ratio"] == 1.0 and tmp["flicker_in"] > 0
    assert tmp["jitter_frames"] == FRAMES - 2 and tmp["flicker_frames"] == FRAMES - 1
    assert bl["border_step_excess"] == 0.0 and bl["border_step_original"] > 0
    assert bl["color_shift_dE"] == 0.0 and bl["sharpness_ratio"] == 1.0

    assert json.loads((out / "metrics.json").read_text()) == r
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and 'src="http' not in html
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svgs) >= 8
    for s in svgs:
        ET.fromstring(s)  # well-formed
    assert not list(out.glob(".tmp-*"))


def snapshot_state(iteration: int, identities: dict) -> str:
    """A snapshot's state.json as train writes it (the fields ModelMeta reads)."""
    doc = {"format": FORMAT, "version": 1, "arch": "lite", "iteration": iteration,
           "model_id": "0123456789ab", "identities": identities}  # fmt: skip
    return json.dumps(doc)


def test_identity_from_model_meta(clips, faceset_man, faceset_woman, tmp_path, caplog):
    """Means from a model folder: the newest complete snapshot's state.json
    (``identities.<side>.mean_embedding``); other JSON files there are not searched."""
    man, woman = faceset_mean(faceset_man).tolist(), faceset_mean(faceset_woman).tolist()
    model = tmp_path / "model"
    for it, (a, b) in ((50, (woman, man)), (100, (man, woman))):  # older one has them swapped
        snap = model / "snapshots" / f"it-{it:08d}"
        snap.mkdir(parents=True)
        ident = {"a": {"faceset": "x", "mean_embedding": a}, "b": {"mean_embedding": b}}
        (snap / "state.json").write_text(snapshot_state(it, ident))
    (model / "snapshots" / "it-00000200").mkdir()  # unfinished: no state.json, skipped
    (model / "broken.json").write_text("{not json")
    r = evaluate(clips["original"], clips["original"], model_dir=model, cfg=cfg(max_frames=4))
    assert (
        r["identity"]["source_a"] == f"model:{model / 'snapshots' / 'it-00000100' / 'state.json'}"
    )
    assert r["identity"]["id_retrieval_a"] == 1.0

    # a folder of other JSON files (no snapshot) has no means: A falls back to the original
    # faces, B is unknown, and eval says why
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "model.json").write_text(json.dumps({"mean_embedding_a": man, "mean_embedding_b": woman}))  # fmt: skip
    r = evaluate(clips["original"], clips["original"], model_dir=flat, cfg=cfg(max_frames=4))
    assert r["identity"]["source_a"] == "original" and r["identity"]["source_b"] == "none"
    assert any("no trained model" in m for m in caplog.messages)


def test_a_real_change_of_identity_is_measured(clips, faceset_man, faceset_woman, tmp_path):
    """The man's clip with the woman's real face pasted in by convert (a model that draws her
    first aligned face whatever comes in): eval finds the swapped faces nearer her than him,
    and the original faces nearer him - the identity figures move when the identity does."""
    from facetwin.convert.pipeline import ConvertConfig, convert
    from facetwin.face.align import recrop

    with FaceSet.open(faceset_woman) as fs:
        face = recrop(fs.load_aligned(fs.faces()[0]), fs.coverage, 1.0, 128)
    meta = {"arch": "fixed", "input_size": 128, "coverage": 1.0, "model_id": "her-face"}
    swapped = tmp_path / "as_her.mp4"
    convert(clips["original"], (FixedFace(face), meta), swapped, ConvertConfig(progress=False))
    r = evaluate(
        clips["original"], swapped, faceset_a=faceset_man, faceset_b=faceset_woman, cfg=cfg()
    )
    ident = r["identity"]
    assert r["frames"]["swap_found_rate"] >= 0.9
    assert ident["original_id_retrieval_a"] == 1.0  # the originals are him
    assert ident["id_retrieval"] == 1.0  # every swapped face is nearer her
    assert ident["original_to_a_mean"] < 0.3 and ident["original_to_b_mean"] > 0.7
    # the swapped faces left him (0.18 -> 0.62 here) and came to her (0.79 -> 0.56): a still
    # of her face pasted on his head, so his outline still pulls the embedding
    assert ident["swap_to_original_mean"] > 0.5
    assert ident["swap_to_a_mean"] - ident["original_to_a_mean"] > 0.3
    assert ident["original_to_b_mean"] - ident["swap_to_b_mean"] > 0.15


def test_b2a_conversion_reads_the_models_sides_the_other_way(
    clips, faceset_man, faceset_woman, tmp_path, caplog
):
    """A model trained woman (A) <-> man (B) converting the man's clip is a b2a conversion:
    eval's A (the person in the original) is the model's B. Here the "swap" is the man's clip
    itself, so with the direction given every face is retrieved as A; read as a2b, the sides
    are crossed, every figure is inverted, and eval says so."""
    woman, man = faceset_mean(faceset_woman).tolist(), faceset_mean(faceset_man).tolist()
    snap = tmp_path / "model" / "snapshots" / "it-00000100"
    snap.mkdir(parents=True)
    ident = {"a": {"mean_embedding": woman}, "b": {"mean_embedding": man}}
    (snap / "state.json").write_text(snapshot_state(100, ident))
    model = tmp_path / "model"
    r = evaluate(
        clips["original"],
        clips["original"],
        model_dir=model,
        cfg=cfg(max_frames=4, direction="b2a"),
    )
    assert r["identity"]["original_id_retrieval_a"] == 1.0
    assert r["identity"]["id_retrieval_a"] == 1.0 and r["identity"]["id_retrieval"] == 0.0
    assert not [m for m in caplog.messages if "direction" in m]

    r = evaluate(clips["original"], clips["original"], model_dir=model, cfg=cfg(max_frames=4))
    assert r["identity"]["original_id_retrieval_a"] == 0.0
    assert any("--direction b2a" in m for m in caplog.messages)
    with pytest.raises(UsageError):
        evaluate(clips["original"], clips["original"], cfg=cfg(direction="ab"))


def test_constant_brightness_shift(clips):
    """+12 levels everywhere: the face does not flicker more (ratio exactly 1) and nothing
    moves, but the face colour is lighter by the L* that 12 sRGB levels make (0.3..0.45 L* per
    level at skin tones), while the step across the border stays (both sides shift)."""
    r = evaluate(clips["original"], clips["bright"], cfg=cfg())
    t, b = r["temporal"], r["blending"]
    assert t["flicker_out"] == pytest.approx(t["flicker_in"], rel=1e-6)
    assert t["flicker_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert t["landmark_jitter_ratio"] == 1.0
    # the landmarks do not move; the default pose estimator (the mesh) reads the pixels, which
    # moves it by under a tenth of a degree (the landmark fit: exactly 0)
    assert r["attributes"]["pose_error_mean"] < 0.2
    assert 0.3 * SHIFT < b["color_shift_L"] < 0.45 * SHIFT
    assert abs(b["color_shift_a"]) < 0.12 * b["color_shift_L"]
    assert abs(b["color_shift_b"]) < 0.12 * b["color_shift_L"]
    assert abs(b["border_step_excess"]) < 0.05 * b["border_step_original"]
    luma = np.array([(p["luma_out"] - p["luma_in"]) for p in r["per_frame"]])
    assert luma == pytest.approx(SHIFT, abs=1e-6)
    # no face sets and no model: A is the original faces, B unknown -> distances only
    ident = r["identity"]
    assert ident["source_a"] == "original" and ident["source_b"] == "none"
    assert ident["id_retrieval"] is None and 0 <= ident["swap_to_a_mean"] < 0.2


def test_alternating_brightness_flicker(clips):
    """+12 levels on every odd frame: each step changes by +-12, so flicker is 12 plus the
    original's own steps with alternating signs - exactly, frame by frame."""
    r = evaluate(clips["original"], clips["alternating"], cfg=cfg())
    t = r["temporal"]
    m = np.array([p["luma_in"] for p in r["per_frame"]])
    frame = np.arange(len(m))
    sign = np.where(frame[1:] % 2 == 1, 1.0, -1.0)
    expected = np.abs(np.diff(m) + SHIFT * sign).mean()
    assert t["flicker_out"] == pytest.approx(expected, rel=1e-6)
    assert abs(t["flicker_out"] - SHIFT) < t["flicker_in"]
    assert t["flicker_ratio"] > 10
    assert t["landmark_jitter_ratio"] == 1.0  # the landmarks did not move


def test_start_frame_compares_only_the_frames_from_there_on(clips):
    """The alternating clip from frame 20: only frames 20..29 are compared, under their own
    frame numbers (so a held-out part of a clip is measured by itself)."""
    full = evaluate(clips["original"], clips["alternating"], cfg=cfg())
    r = evaluate(clips["original"], clips["alternating"], cfg=cfg(start_frame=20))
    assert r["frames"]["compared"] == FRAMES - 20 and r["inputs"]["start_frame"] == 20
    assert [p["frame"] for p in r["per_frame"]] == list(range(20, FRAMES))
    # the same frames: the face is found afresh at frame 20 (a full detection, not the track
    # of frames 0..19), so its region - and the mean brightness in it - moves by a pixel or so
    tail = [p["luma_in"] for p in full["per_frame"]][20:]
    assert [p["luma_in"] for p in r["per_frame"]] == pytest.approx(tail, abs=0.5)
    with pytest.raises(UsageError):
        evaluate(clips["original"], clips["original"], cfg=cfg(start_frame=-1))


def test_metrics_choose_the_measures(clips):
    """``metrics`` runs only the measures named: their numbers are those of a full run, the
    other sections are null and their per-frame columns absent; every figure of the catalogue
    is a number some measure computes; an unknown name is a one-line UsageError."""
    from facetwin.eval import catalog

    full = evaluate(clips["original"], clips["offset"], cfg=cfg(max_frames=6))
    for fig in catalog.ordered():
        assert fig.key in full[fig.section], fig.key
    r = evaluate(
        clips["original"], clips["offset"], cfg=cfg(max_frames=6, metrics=("flicker", "attributes"))
    )
    assert r["config"]["metrics"] == ["attributes", "flicker"]  # in report order
    assert r["identity"] is None and r["blending"] is None
    assert r["attributes"] == full["attributes"]
    flicker = {k: v for k, v in full["temporal"].items() if k.startswith("flicker")}
    assert r["temporal"] == {"tracks": 1, **flicker}
    row = r["per_frame"][0]
    assert "pose_error" in row and "flicker_in" in row
    assert "id_swap_to_a" not in row and "jitter_in" not in row
    with pytest.raises(UsageError) as err:
        evaluate(clips["original"], clips["offset"], cfg=cfg(metrics=("identity", "nope")))
    assert "unknown metric 'nope'" in one_line(err) and "flicker" in one_line(err)


@pytest.mark.skipif(
    importlib.util.find_spec("mediapipe") is None, reason="mediapipe 0.10.x wheel not installed"
)
def test_pose_from_the_mesh_landmarker(clips):
    """``pose="dlib-mesh-pose"`` reads both faces' head pose from MediaPipe's mesh (the
    estimator within 5 degrees on the known-yaw stills) instead of the rigid landmark fit: on
    the clip moved by (7, 5) px the pose is kept, by either estimator, to within 3 degrees, and
    the two estimators give different numbers (the option is used)."""
    mesh = evaluate(
        clips["original"], clips["offset"], cfg=cfg(max_frames=6, pose="dlib-mesh-pose")
    )
    plain = evaluate(clips["original"], clips["offset"], cfg=cfg(max_frames=6, pose="landmarks"))
    assert mesh["config"]["pose"] == "dlib-mesh-pose" and plain["config"]["pose"] == "landmarks"
    # the default ("auto") is the mesh where the wheel is installed, and metrics.json says so
    assert cfg().pose == "auto" and cfg().resolve_pose() == "dlib-mesh-pose"
    for r in (mesh, plain):
        assert 0.0 <= r["attributes"]["pose_error_mean"] < 3.0, r["attributes"]
    assert mesh["attributes"]["pose_error_mean"] != plain["attributes"]["pose_error_mean"]
    assert (
        mesh["attributes"]["expression_error_mean"] == plain["attributes"]["expression_error_mean"]
    )
    with pytest.raises(UsageError):
        evaluate(clips["original"], clips["offset"], cfg=cfg(pose="nope"))
    with pytest.raises(UsageError, match="dlib-mesh-pose"):  # its state would mix both streams
        evaluate(clips["original"], clips["offset"], cfg=cfg(pose="dlib-mesh-pose-fast"))


def test_constant_offset_keeps_jitter(clips):
    """The whole clip moved by (7, 5) px: the face shakes no more than before. The remaining
    difference is dlib's landmark noise, which depends on the pixel grid (1-px shifts give
    pose errors of ~1 degree and jitter ratios within 0.85..1.15)."""
    r = evaluate(clips["original"], clips["offset"], cfg=cfg())
    t, a = r["temporal"], r["attributes"]
    assert r["frames"]["swap_found_rate"] == 1.0
    assert 0.8 < t["landmark_jitter_ratio"] < 1.25
    assert 0.8 < t["shape_jitter_ratio"] < 1.25
    assert a["pose_error_mean"] < 3.0 and a["expression_error_mean"] < 0.02


def test_image_folders_and_single_images(tmp_path):
    """Folders pair by file name (or by stem when convert changed the format); photos have no
    temporal metrics."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for name in ("single_face.jpg", "fr_obama.jpg", "45-m7-di-ph.jpg"):
        shutil.copy(DATA_IMAGES / name, a / name)
    shutil.copy(DATA_IMAGES / "single_face.jpg", b / "single_face.jpg")
    img = cv2.imread(str(DATA_IMAGES / "fr_obama.jpg"))
    cv2.imwrite(str(b / "fr_obama.png"), img)  # same pixels as the decoded JPEG, new format
    r = evaluate(a, b, cfg=cfg(), output_dir=tmp_path / "out")
    assert r["kind"] == "images" and r["temporal"] is None
    assert r["inputs"]["missing_in_swapped"] == ["45-m7-di-ph.jpg"]
    assert {p["name"] for p in r["per_frame"]} == {"single_face.jpg", "fr_obama.jpg"}
    assert r["attributes"]["pose_error_mean"] == 0.0
    assert r["identity"]["swap_to_original_mean"] == 0.0
    assert (tmp_path / "out" / "report.html").is_file()

    one = evaluate(a / "fr_obama.jpg", b / "fr_obama.png", cfg=cfg())
    assert one["kind"] == "image" and one["frames"]["faces"] == 1


def test_broken_inputs_give_one_line_errors(clips, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 255, 5000, np.uint8).tobytes())
    orig = clips["original"]
    cases = [
        (tmp_path / "missing.mp4", orig, InputError, "no such file"),
        (orig, corrupt, InputError, "not a readable video"),
        (clips["grey"], clips["grey"], NoFaceError, "no face found in any"),
        (orig, clips["grey"], NoFaceError, "no face found where the original has one"),
        (orig, clips["small"], InputError, "keep the original's size"),
        (orig, DATA_IMAGES / "single_face.jpg", UsageError, "two videos"),
    ]
    for original, swapped, kind, text in cases:
        with pytest.raises(kind) as err:
            evaluate(original, swapped, cfg=cfg())
        assert text in one_line(err)
    with pytest.raises(InputError) as err:
        evaluate(orig, orig, faceset_a=tmp_path, cfg=cfg())
    assert "not a face set" in one_line(err)
    with pytest.raises(InputError) as err:
        evaluate(orig, orig, model_dir=tmp_path / "nope", cfg=cfg())
    assert "no such model folder" in one_line(err)
    with pytest.raises(UsageError):
        evaluate(orig, orig, cfg=cfg(mask="round"))


# -- the pure metrics ------------------------------------------------------------------------


def _face_landmarks() -> np.ndarray:
    """A plausible (68, 2) face: the mean face's inner points plus a jaw, at 200 px IOD-ish."""
    from facetwin.face.align import mean_face

    inner = mean_face() * 260 + 100
    t = np.linspace(np.pi, 2 * np.pi, 17)
    jaw = np.stack([230 + 150 * np.cos(t), 200 - 170 * np.sin(t)], 1)
    return np.concatenate([jaw, inner])


def test_border_colour_step_of_a_flat_face():
    """Flat colour inside the face hull, another outside: the step is their delta E exactly."""
    lm = _face_landmarks()
    inside, outside = (200, 150, 130), (60, 90, 120)
    img = np.zeros((480, 480, 3), np.uint8)
    img[:] = outside
    region = M.face_region(lm, img.shape, band=6)
    assert region is not None
    img[region.rows, region.cols][region.inside] = inside
    lab = M.to_lab(np.array([[inside, outside]], np.uint8))[0]
    assert M.border_color_step(img, region) == pytest.approx(np.linalg.norm(lab[0] - lab[1]), 1e-4)
    # the same face pasted without a seam: no step at all
    img[:] = outside
    assert M.border_color_step(img, region) == pytest.approx(0.0, abs=1e-4)


def test_jitter_and_flicker_known_values():
    lm = _face_landmarks()
    iod = M.inter_ocular(lm)
    frames = np.arange(10)
    moving = np.stack([lm + (3.0 * t, -1.0 * t) for t in frames])  # constant velocity
    assert np.nanmax(M.landmark_jitter(frames, moving, np.full(10, iod))) == pytest.approx(0)
    eps = 2.0
    shaking = np.stack([lm + (eps * (-1) ** t, 0.0) for t in frames])  # +-2 px every frame
    j = M.landmark_jitter(frames, shaking, np.full(10, iod))
    assert np.isnan(j[0]) and np.isnan(j[-1])
    assert j[1:-1] == pytest.approx(4 * eps / iod)  # |x(t+1) - 2x(t) + x(t-1)| = 4 eps
    gap = np.array([0, 1, 2, 4, 5, 6])  # no second difference across the missing frame 3
    assert np.isfinite(M.landmark_jitter(gap, shaking[:6], np.full(6, iod))).sum() == 2
    f = M.intensity_flicker(gap, np.array([10, 12, 11, 50, 50, 47.0]))
    assert np.isnan(f[0]) and np.isnan(f[3])
    assert M.finite_mean(f) == pytest.approx((2 + 1 + 0 + 3) / 4)
    assert np.isnan(M.ratio(1.0, 0.0)) and M.ratio(3.0, 2.0) == 1.5


def test_pose_and_expression_error_invariances():
    lm = _face_landmarks()
    c, s = np.cos(0.3), np.sin(0.3)
    moved = (lm @ np.array([[c, -s], [s, c]]).T) * 0.7 + (40, -12)  # similarity: same shape
    assert M.expression_error(lm, moved)["all"] == pytest.approx(0, abs=1e-9)
    opened = lm.copy()
    opened[[57, 66]] += (0, 10)  # lower lip down: only the mouth changes
    e = M.expression_error(lm, opened)
    assert e["mouth"] > 0 and e["eyes"] < e["mouth"]
    assert M.pose_error((179.0, 0.0, -170.0), (-179.0, 3.0, 170.0)).tolist() == pytest.approx(
        [2.0, 3.0, 20.0, np.sqrt(4 + 9 + 400)]
    )


def test_svg_and_json_helpers():
    x = np.arange(20.0)
    y = np.sin(x)
    y[5:8] = np.nan
    for svg in (
        line_plot({"a": (x, y), "b": (x, y * 2)}, "t <&>", "frame", "v"),
        line_plot({"a": (x, np.full(20, np.nan))}, "empty"),
        histogram({"a": y, "b": y + 1}, "h"),
        histogram({"a": np.array([1.0, 1.0])}, "constant"),
    ):
        ET.fromstring(svg)
    assert clean_json({"a": np.float32(np.nan), "b": [np.int64(3), (np.bool_(True),)]}) == {
        "a": None,
        "b": [3, [True]],
    }


def test_sharpness_falls_with_blur_on_a_real_face():
    """Variance of the Laplacian in the face region of a real photo: blurring the face (what an
    under-trained 64 px model pastes) lowers it, the unchanged photo scores the same."""
    from facetwin.extract.detectors import DETECTORS
    from facetwin.extract.landmarks import landmarks_68
    from facetwin.media.image import read_image

    img = read_image(DATA_IMAGES / "single_face.jpg")
    det = DETECTORS.get("dlib-hog")().detect(img)[0]
    region = M.face_region(landmarks_68(img, det.box), img.shape)
    assert region is not None
    sharp = M.sharpness(img, region)
    assert sharp > 0 and M.sharpness(img.copy(), region) == sharp
    soft = [M.sharpness(cv2.GaussianBlur(img, (0, 0), s), region) for s in (1.0, 2.0, 4.0)]
    assert sharp > soft[0] > soft[1] > soft[2]
    assert soft[1] < 0.5 * sharp
