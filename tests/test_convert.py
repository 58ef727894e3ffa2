"""Convert end to end on the bundled real clips, with a short-trained ``lite`` model.

The model is trained for a few dozen iterations once per session: its faces are blurry, which
is fine - these tests are about the plumbing (geometry, timing, audio, labels, resume, errors)
and the measurable properties of blending and temporal stability. Figures (seams, jitter) are
printed; run with ``-s`` to see them.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import MAN, MAN_NOFACE, WOMAN, FixedFace, train_lite
from facetwin.convert import BLENDERS, COLOR_MATCHERS, ConvertConfig, convert
from facetwin.convert.blend import BlendParams
from facetwin.convert.blend.mask import soft_mask
from facetwin.convert.blend.poisson import clone_mask
from facetwin.convert.config import PARTS_SUFFIX
from facetwin.convert.pipeline import Converter
from facetwin.convert.swap import Swapper, load_swap_model, make_patch, square_roi
from facetwin.errors import InputError, ModelMismatchError, NoFaceError
from facetwin.eval.metrics import (
    FaceRegion,
    border_color_step,
    inter_ocular,
    landmark_jitter,
    rms,
)
from facetwin.extract.detect import detect_full
from facetwin.extract.detectors import create_detector
from facetwin.extract.landmarks import landmarks_68
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.face.align import INNER, alignment_matrix, recrop
from facetwin.faceset import FaceSet
from facetwin.label import read_video_label, verify
from facetwin.media.image import read_image, write_image
from facetwin.media.video import copy_head, iter_frames, probe

pytestmark = pytest.mark.slow


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, faceset_woman, faceset_man) -> Path:
    """lite, 30 iterations: A = the woman, B = the man (identities recorded in the checkpoint)."""
    out = tmp_path_factory.mktemp("model") / "lite"
    train_lite(faceset_woman, faceset_man, out, 30)
    return out


def cut(src: Path, dst: Path, seconds: float) -> Path:
    """The first ``seconds`` of a real clip, packets copied (video and audio)."""
    return copy_head(src, dst, seconds)


@pytest.fixture(scope="module")
def woman_clip(tmp_path_factory) -> Path:
    """2 s of the woman's clip (50 frames, AAC audio)."""
    return cut(WOMAN, tmp_path_factory.mktemp("clips") / "woman_2s.mp4", 2.0)


@pytest.fixture(scope="module")
def woman_clip_faceset(woman_clip, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fs") / "woman_2s"
    extract([woman_clip], out, ExtractConfig(progress=False))
    return out


def frames_of(path: Path) -> list[np.ndarray]:
    return [f for _, f in iter_frames(path)]


def cfg(**kw) -> ConvertConfig:  # type: ignore[no-untyped-def]
    return ConvertConfig(progress=False, preset="veryfast", **kw)


#: Pixels (max over RGB above 12 grey levels: well above codec error) that a swapped face
#: changes at the least in a frame of the woman's clip; the swap paints a face of 10-25k pixels.
MIN_CHANGED = 2_000


def changed_pixels(a: np.ndarray, b: np.ndarray) -> int:
    """How many pixels of two frames differ by more than codec error."""
    return int((np.abs(a.astype(int) - b).max(-1) > 12).sum())


def min_changed(src: Path, out: Path) -> int:
    """The fewest changed pixels over all frames of ``out`` against ``src`` (same count)."""
    a, b = frames_of(src), frames_of(out)
    assert len(a) == len(b)
    return min(changed_pixels(x, y) for x, y in zip(a, b))


# -- video -------------------------------------------------------------------------------------


def test_video_keeps_frames_fps_size_audio_and_is_labelled(woman_clip, model_dir, tmp_path):
    out = tmp_path / "swapped.mp4"
    s = convert(woman_clip, model_dir, out, cfg(segment_frames=20))
    info_in, info_out = probe(woman_clip), probe(out)
    assert (info_out.width, info_out.height) == (info_in.width, info_in.height)
    assert len(frames_of(out)) == len(frames_of(woman_clip)) == s.frames == 50
    assert s.frames_swapped == 50 and s.audio == "copy"
    with av.open(str(woman_clip)) as a, av.open(str(out)) as b:
        assert b.streams.video[0].average_rate == a.streams.video[0].average_rate
        assert b.streams.video[0].codec_context.name == "h264"
        assert b.streams.video[0].codec_context.pix_fmt == "yuv420p"
        audio_a = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
        audio_b = [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size]
        assert audio_a == audio_b
    report = verify(out)
    assert report.watermark_found and report.metadata_tag and "synthetic" in report.metadata_tag
    assert not (tmp_path / f"swapped.mp4{PARTS_SUFFIX}").exists()
    assert {"detect", "model", "blend", "encode"} <= set(s.timings)
    least = min_changed(woman_clip, out)
    assert least > MIN_CHANGED  # every frame shows the swapped face
    print(
        f"\n[convert] 50 frames: {s.frames_per_second} frames/s, split {s.timings}; "
        f"at least {least} pixels changed per frame"
    )


def test_frames_without_faces_pass_through_untouched(faceset_man, model_dir, tmp_path):
    """face_noface.mov: the man (frames 0-71), then a cartoon. With the face set's landmarks,
    b2a swaps the man; every other pixel stays the input's within codec error."""
    out = tmp_path / "noface.mp4"
    s = convert(
        MAN_NOFACE,
        model_dir,
        out,
        cfg(direction="b2a", faceset=str(faceset_man), label=False, crf=16),
    )
    a, b = frames_of(MAN_NOFACE), frames_of(out)
    assert len(a) == len(b) == 169 and s.frames_swapped == 72
    with FaceSet.open(faceset_man) as fs:
        sid = fs.source(str(MAN_NOFACE.resolve()))["id"]
        rois = {r.frame: r for r in fs.faces(include_bridged=True, source_id=sid)}
    model = load_swap_model(model_dir, "cpu")
    errs_face, errs_none, swapped = [], [], []
    for i, (x, y) in enumerate(zip(a, b)):
        diff = np.abs(x.astype(int) - y).mean(-1)
        keep = np.ones(diff.shape, bool)
        if i in rois:
            lm = rois[i].landmarks_smooth
            m = alignment_matrix(lm, model.input_size, model.coverage)
            x0, y0, x1, y1 = square_roi(m, model.input_size, x.shape, margin=8)
            keep[y0:y1, x0:x1] = False
            errs_face.append(diff[keep].mean())
            swapped.append(changed_pixels(x[y0:y1, x0:x1], y[y0:y1, x0:x1]))
        else:
            errs_none.append(diff.mean())
    assert len(errs_none) == 97
    assert max(errs_none) < 2.0 and max(errs_face) < 2.0
    assert min(swapped) > MIN_CHANGED  # while inside the square his face did change
    print(
        f"\n[pass-through] mean |out-in| outside faces: no-face frames max "
        f"{max(errs_none):.2f}, face frames max {max(errs_face):.2f} grey levels (crf 16); "
        f"at least {min(swapped)} pixels of his face changed"
    )


def test_resume_after_an_interruption(
    woman_clip, woman_clip_faceset, model_dir, tmp_path, monkeypatch
):
    out = tmp_path / "resumed.mp4"
    opts = cfg(segment_frames=16, faceset=str(woman_clip_faceset))
    real = Converter.render

    def interrupted(self, frame, faces, label, index=None):  # type: ignore[no-untyped-def]
        if getattr(self, "_calls", 0) == 20:
            raise KeyboardInterrupt
        self._calls = getattr(self, "_calls", 0) + 1
        return real(self, frame, faces, label, index)

    monkeypatch.setattr(Converter, "render", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert(woman_clip, model_dir, out, opts)
    parts = tmp_path / f"resumed.mp4{PARTS_SUFFIX}"
    assert sorted(p.name[:13] for p in parts.glob("seg_*.mp4")) == ["seg_000000000"]
    assert not list(parts.glob(".tmp-*")) and not out.exists()
    monkeypatch.setattr(Converter, "render", real)
    s = convert(woman_clip, model_dir, out, opts)
    assert s.resumed_segments == 1 and s.frames == 50
    assert len(frames_of(out)) == 50 and not parts.exists()
    assert verify(out).watermark_found
    # the kept segment and the ones encoded after the restart all carry the swapped face
    assert min_changed(woman_clip, out) > MIN_CHANGED


def test_ctrl_c_in_detection_then_resume_swaps_every_frame(
    woman_clip, model_dir, tmp_path, monkeypatch
):
    """A Ctrl-C while convert finds the faces must not leave a frame with the original face."""
    from facetwin.extract import pipeline

    out = tmp_path / "detect_interrupted.mp4"
    real = pipeline.analyse_face
    seen = [0]

    def wrapped(*a, **kw):  # type: ignore[no-untyped-def]
        seen[0] += 1
        if seen[0] == 20:
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, mid-frame
        return real(*a, **kw)

    monkeypatch.setattr(pipeline, "analyse_face", wrapped)
    with pytest.raises(KeyboardInterrupt):
        convert(woman_clip, model_dir, out, cfg())
    monkeypatch.undo()
    s = convert(woman_clip, model_dir, out, cfg())
    assert s.frames == 50 and s.frames_swapped == 50
    assert min_changed(woman_clip, out) > MIN_CHANGED  # no frame kept the original face


# -- blend and colour modes, seams ---------------------------------------------------------------


@pytest.mark.parametrize("blend", ["overlay", "mask", "poisson"])
def test_every_blend_and_colour_mode_runs(
    blend, woman_clip, woman_clip_faceset, model_dir, tmp_path
):
    frame = frames_of(woman_clip)[10]
    for color in COLOR_MATCHERS.names():
        out = tmp_path / f"{blend}_{color}.png"
        s = convert(
            woman_clip,
            model_dir,
            out,
            cfg(blend=blend, color=color, preview=10, faceset=str(woman_clip_faceset)),
        )
        assert s.kind == "preview" and s.faces_swapped == 1
        img = read_image(out)
        assert img.shape == frame.shape
        changed = changed_pixels(img, frame)
        assert MIN_CHANGED < changed < 0.25 * frame.shape[0] * frame.shape[1], (blend, color)
        assert verify(out).labelled


def paste_border(
    frame: np.ndarray, lm: np.ndarray, size: int, coverage: float, blend: str, band: int = 4
) -> FaceRegion:
    """Where ``blend`` puts the new face (overlay: the crop square; mask: alpha >= 0.5; poisson:
    the clone mask) as eval's FaceRegion, with ``band``-pixel bands either side of its edge."""
    p = make_patch(
        frame, np.zeros((size, size, 3), np.uint8), alignment_matrix(lm, size, coverage), lm
    )
    pasted = {
        "overlay": lambda: p.square > 0.5,
        "mask": lambda: soft_mask(p, BlendParams()) >= 0.5,
        "poisson": lambda: clone_mask(p, BlendParams()) > 0,
    }[blend]()
    m = pasted.astype(np.uint8) * 255
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    ys, xs = np.nonzero(pasted)
    x0, y0, x1, y1 = p.roi
    return FaceRegion(
        slice(y0, y1),
        slice(x0, x1),
        pasted,
        pasted & ~(cv2.erode(m, k) > 0),
        (cv2.dilate(m, k) > 0) & ~pasted,
        (float(xs.mean()), float(ys.mean())),
    )


def test_mask_and_poisson_seams_are_lower_than_overlay(model_dir):
    """eval's border colour step (delta E between thin bands either side of the edge of what
    each blender pastes), over 6 frames of the woman's clip; the input's own step at the same
    edges (skin, brows) is the floor."""
    model = load_swap_model(model_dir, "cpu")
    det = create_detector("dlib-hog")
    samples = []
    for i, f in iter_frames(WOMAN):
        if i % 60 == 0:
            samples.append((f, landmarks_68(f, detect_full(det, f, 1280)[0].box)))
        if len(samples) == 6:
            break
    seams, floor = {}, {}
    for name in ("overlay", "mask", "poisson"):
        sw = Swapper(model, "b", COLOR_MATCHERS.get("rct"), BLENDERS.get(name), BlendParams())
        out, inp = [], []
        for f, lm in samples:
            r = paste_border(f, lm, model.input_size, model.coverage, name)
            out.append(border_color_step(sw.swap_frame(f, [lm]), r))
            inp.append(border_color_step(f, r))
        seams[name], floor[name] = float(np.mean(out)), float(np.mean(inp))
    print(
        "\n[seams] colour step at the paste border, delta E (input at the same border): "
        + ", ".join(f"{k} {v:.2f} ({floor[k]:.2f})" for k, v in seams.items())
    )
    assert seams["mask"] < 0.75 * seams["overlay"]
    assert seams["poisson"] < 0.75 * seams["overlay"]


# -- temporal stability ------------------------------------------------------------------------


def landmark_track(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(frames, landmarks) of the largest face, re-detected with dlib in every frame."""
    det = create_detector("dlib-hog")
    frames, marks = [], []
    for i, f in iter_frames(path):
        found = detect_full(det, f, 1280)
        if found:
            frames.append(i)
            marks.append(landmarks_68(f, max(found, key=lambda d: d.width).box))
    return np.array(frames), np.array(marks)


def jitter(track: tuple[np.ndarray, np.ndarray], min_frames: int = 30) -> float:
    """eval's landmark jitter of the inner landmarks (second difference / IOD), RMS over the
    frames found together with both neighbours (at least ``min_frames``)."""
    frames, lm = track
    per_frame = landmark_jitter(frames, lm[:, INNER], np.array([inter_ocular(x) for x in lm]))
    assert np.isfinite(per_frame).sum() >= min_frames
    return rms(per_frame)


def test_smoothing_steadies_the_swapped_face(woman_clip, woman_clip_faceset, faceset_man, tmp_path):
    """A fixed real face pasted by convert follows the frame's landmarks: smoothing lowers the
    landmark jitter of the output below the input's. (A trained model's jitter is a quality
    figure, measured by benchmarks/quality.py, not asserted here.)"""
    with FaceSet.open(faceset_man) as fs:
        face = recrop(fs.load_aligned(fs.faces()[0]), fs.coverage, 1.0, 128)
    fixed = (
        FixedFace(face),
        {"arch": "fixed", "input_size": 128, "coverage": 1.0, "model_id": "fixed-face"},
    )
    base = jitter(landmark_track(woman_clip))
    ratios: dict[str, dict[str, float]] = {"fixed face": {}}
    for model_name, model in (("fixed face", fixed),):
        for blend, smooth in (
            ("mask", True),
            ("mask", False),
            ("poisson", True),
            ("poisson", False),
        ):
            out = tmp_path / f"{model_name[:5]}_{blend}_{smooth}.mp4"
            convert(
                woman_clip,
                model,
                out,
                cfg(blend=blend, smooth=smooth, label=False, faceset=str(woman_clip_faceset)),
            )
            key = f"{blend} smooth={'on' if smooth else 'off'}"
            ratios[model_name][key] = round(jitter(landmark_track(out), 30) / base, 3)
    # what a clone centred on the detector's box would add: the jitter of the offset between
    # that box and the landmarks (our clone centre comes from the landmark mask: none by design)
    with FaceSet.open(woman_clip_faceset) as fs:
        recs = fs.faces()
    offsets = np.array([np.reshape(r.box, (2, 2)).mean(0) - r.landmarks.mean(0) for r in recs])
    box_jitter = rms(
        landmark_jitter(
            np.array([r.frame for r in recs]),
            offsets[:, None],
            np.array([inter_ocular(r.landmarks) for r in recs]),
        )
    )
    print(
        f"\n[jitter] output/input landmark jitter (input {base:.4f} IOD/frame^2): {ratios}; "
        f"a clone centred on the detector's box would add jitter {box_jitter:.4f}"
    )
    fixed_r = ratios["fixed face"]
    assert fixed_r["mask smooth=on"] < fixed_r["mask smooth=off"]
    assert fixed_r["poisson smooth=on"] < fixed_r["poisson smooth=off"]
    assert fixed_r["mask smooth=on"] < 1.0 and fixed_r["poisson smooth=on"] < 1.0


# -- images, preview, labels -------------------------------------------------------------------


def test_folder_of_images_swaps_faces_and_copies_the_rest(woman_clip, model_dir, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    frames = frames_of(woman_clip)
    write_image(src / "a.png", frames[0])
    write_image(src / "b.jpg", frames[30])
    write_image(
        src / "c.png",
        read_image(Path(__file__).parents[1] / "data" / "images" / "grace_hopper_512x512.jpg")[
            340:
        ],
    )  # no face
    s = convert(src, model_dir, tmp_path / "out", cfg())
    assert s.kind == "folder" and s.frames == 3 and s.frames_swapped == 2
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        ".facetwin-convert.jsonl",
        ".facetwin.lock",
        "a.png",
        "b.jpg",
        "c.png",
    ]  # + the resume journal
    assert (tmp_path / "out" / "c.png").read_bytes() == (src / "c.png").read_bytes()
    for name in ("a.png", "b.jpg"):
        r = verify(tmp_path / "out" / name)
        assert r.watermark_found and r.metadata_tag


def test_folder_conversion_resumes_and_redoes_what_changed(woman_clip, model_dir, tmp_path):
    """A second run with the same settings skips finished images (outputs untouched, same
    counts); a deleted output is redone alone; other settings redo everything."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    frames = frames_of(woman_clip)
    for i, name in enumerate(("a.png", "b.png", "c.jpg")):
        write_image(src / name, frames[min(10 * i, len(frames) - 1)])
    first = convert(src, model_dir, out, cfg())
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.*") if p.name[0] != "."}
    again = convert(src, model_dir, out, cfg())
    assert (again.frames, again.frames_swapped, again.faces_swapped) == (
        first.frames, first.frames_swapped, first.faces_swapped
    ) == (3, 3, 3)  # fmt: skip
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.*") if p.name[0] != "."} == stamps
    (out / "b.png").unlink()
    third = convert(src, model_dir, out, cfg())
    assert third.faces_swapped == 3 and (out / "b.png").is_file()
    assert (out / "a.png").stat().st_mtime_ns == stamps["a.png"]
    assert (out / "b.png").stat().st_mtime_ns != stamps["b.png"]
    convert(src, model_dir, out, cfg(color="none"))
    assert all(
        (out / n).stat().st_mtime_ns != stamps[n] for n in ("a.png", "c.jpg")
    )  # other settings: redone


def test_only_the_source_person_is_swapped(woman_clip, model_dir, tmp_path, data_dir):
    """The woman (side A) beside Obama in one photo: her face changes, his stays as it was."""
    woman = frames_of(woman_clip)[0]
    obama = read_image(data_dir / "images" / "fr_obama.jpg")
    obama = cv2.resize(obama, (round(obama.shape[1] * 360 / obama.shape[0]), 360))
    write_image(tmp_path / "pair.png", np.hstack([woman, obama]))
    s = convert(tmp_path / "pair.png", model_dir, tmp_path / "out.png", cfg(label=False))
    assert s.faces_swapped == 1 and s.faces_other == 1
    out = read_image(tmp_path / "out.png")
    w = woman.shape[1]
    assert np.abs(out[:, :w].astype(int) - woman).max(-1).mean() > 1  # her face changed
    assert np.array_equal(out[:, w + 8 :], obama[:, 8:])  # his side is untouched


def test_preview_side_by_side_writes_one_image(woman_clip, model_dir, tmp_path):
    s = convert(woman_clip, model_dir, tmp_path / "p.mp4", cfg(preview=7, side_by_side=True))
    out = Path(s.output)
    assert out.suffix == ".png" and s.frames == 1
    img, frame = read_image(out), frames_of(woman_clip)[7]
    assert img.shape == (frame.shape[0], 2 * frame.shape[1], 3)
    assert np.abs(img[:, : frame.shape[1]].astype(int) - frame).mean() < 3  # the original half
    assert changed_pixels(img[:, frame.shape[1] :], frame) > MIN_CHANGED  # the swapped half
    assert not (tmp_path / "p.mp4").exists()


def test_label_off_writes_plain_output_and_warns(woman_clip, model_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        s = convert(woman_clip, model_dir, tmp_path / "plain.mp4", cfg(label=False))
    assert any("NOT" in r.message for r in caplog.records)
    assert not s.labelled
    r = verify(tmp_path / "plain.mp4")
    assert not r.watermark_found and read_video_label(tmp_path / "plain.mp4") is None


# -- errors ------------------------------------------------------------------------------------


def test_wrong_model_for_the_face_set(faceset_man, model_dir, tmp_path):
    """The man's face set with a2b (which swaps the woman): refused, with the fix in the text."""
    with pytest.raises(ModelMismatchError, match="b2a"):
        convert(MAN, model_dir, tmp_path / "x.mp4", cfg(faceset=str(faceset_man)))


def test_face_set_without_the_input(woman_clip, faceset_woman, model_dir, tmp_path):
    with pytest.raises(ModelMismatchError, match="holds no faces of"):
        convert(woman_clip, model_dir, tmp_path / "x.mp4", cfg(faceset=str(faceset_woman)))


def test_corrupt_videos_are_input_errors(model_dir, tmp_path):
    for src in (WOMAN, MAN):  # index first (truncation found by counting) and index last
        data = src.read_bytes()
        bad = tmp_path / f"cut_{src.name}"
        bad.write_bytes(data[: len(data) // 2])
        with pytest.raises(InputError):
            convert(bad, model_dir, tmp_path / "x.mp4", cfg())
    assert not list(tmp_path.glob("x.mp4*"))


def test_no_face_at_all(model_dir, tmp_path, data_dir):
    photo = read_image(data_dir / "images" / "grace_hopper_512x512.jpg")[340:]  # no face there
    write_image(tmp_path / "noface.png", photo)
    with pytest.raises(NoFaceError, match="no face"):
        convert(tmp_path / "noface.png", model_dir, tmp_path / "o.png", cfg())
    # the cartoon part of face_noface.mov, re-encoded as a clip of its own
    clip = tmp_path / "cartoon.mp4"
    with av.open(str(MAN_NOFACE)) as inp, av.open(str(clip), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 960, 540, "yuv420p"
        for i, frame in enumerate(inp.decode(video=0)):
            if 120 <= i < 136:
                img = frame.to_ndarray(format="rgb24")
                for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(p)
        for p in v.encode():
            out.mux(p)
    with pytest.raises(NoFaceError, match="no face"):
        convert(clip, model_dir, tmp_path / "o.mp4", cfg())
    assert not (tmp_path / f"o.mp4{PARTS_SUFFIX}").exists()  # nothing left to resume
    # a photo of someone who is not the model's source person
    with pytest.raises(NoFaceError, match="none of the model"):
        convert(data_dir / "images" / "fr_obama.jpg", model_dir, tmp_path / "o.png", cfg())
