"""Convert stage, the parts: colour matchers, blenders, geometry, plans, labelling, video I/O.

No trained model here (see test_convert.py for the end-to-end runs); the geometry is checked
with an identity "model" that returns its input, so a swap must give the frame back.
"""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
import torch

from conftest import WOMAN
from facetwin.convert import BLENDERS, COLOR_MATCHERS, ConvertConfig, convert
from facetwin.convert.blend import BlendParams, FacePatch
from facetwin.convert.blend.poisson import clone_centre
from facetwin.convert.faces import fill_between, steady_scale
from facetwin.convert.outputs import FrameLabeller
from facetwin.convert.swap import SwapModel, Swapper, make_patch
from facetwin.errors import InputError, UsageError
from facetwin.extract.detect import detect_full
from facetwin.extract.detectors import create_detector
from facetwin.extract.landmarks import landmarks_68
from facetwin.face.align import INNER, alignment_matrix
from facetwin.media.video import decode_frames, iter_frames
from facetwin.media.video_writer import (
    EncodeSettings,
    SegmentWriter,
    StreamTiming,
    check_complete,
    encoded_size,
    finished_segments,
    join_segments,
    stream_timing,
)


class Identity(torch.nn.Module):
    """A 'model' that draws every face as it came in: a swap must reproduce the frame."""

    def __init__(self) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, side: str) -> torch.Tensor:
        return x


def identity_model(size: int = 256, coverage: float = 1.0) -> SwapModel:
    meta = {"arch": "identity", "input_size": size, "coverage": coverage, "model_id": "ident"}
    return SwapModel(Identity(), meta)


@pytest.fixture(scope="module")
def frame_and_face() -> tuple[np.ndarray, np.ndarray]:
    """Frame 100 of the woman's clip and its 68 landmarks."""
    frame = next(f for i, f in iter_frames(WOMAN, 100))
    det = detect_full(create_detector("dlib-hog"), frame, 1280)[0]
    return frame, landmarks_68(frame, det.box)


def rng_face(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), (0, 0), 3)
    mask = np.zeros((64, 64), bool)
    mask[12:52, 12:52] = True
    return base, mask, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)


# -- colour ------------------------------------------------------------------------------------


def _lab_stats(img: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[mask]
    return lab.mean(0), lab.std(0)


def test_rct_moves_lab_mean_and_spread_to_the_target(frame_and_face):
    frame, _ = frame_and_face
    target = frame[100:164, 300:364]
    face = np.clip(target.astype(int) * 0.6 + 60, 0, 255).astype(np.uint8)[:, ::-1]
    mask = np.ones((64, 64), bool)
    out = COLOR_MATCHERS.get("rct")(face, target, mask)
    (m_out, s_out), (m_t, s_t), (m_f, _) = (_lab_stats(x, mask) for x in (out, target, face))
    assert np.abs(m_out - m_t).max() < 1.5 < np.abs(m_f - m_t).max()
    assert np.allclose(s_out, s_t, rtol=0.15, atol=0.5)


def test_hist_matches_each_channel_distribution(frame_and_face):
    frame, _ = frame_and_face
    target = frame[100:164, 300:364]
    # a gamma change (non-linear: rct's two moments cannot undo it) of the mirrored target
    face = (255 * (target[:, ::-1] / 255.0) ** 1.8).astype(np.uint8)
    mask = np.ones((64, 64), bool)
    out = COLOR_MATCHERS.get("hist")(face, target, mask)
    for c in range(3):
        q = np.linspace(5, 95, 10)
        gap_before = np.abs(np.percentile(face[..., c], q) - np.percentile(target[..., c], q))
        gap_after = np.abs(np.percentile(out[..., c], q) - np.percentile(target[..., c], q))
        assert gap_after.mean() < 3 < gap_before.mean()


def test_colour_matchers_keep_shape_and_leave_tiny_masks_alone():
    face, mask, target = rng_face()
    tiny = np.zeros_like(mask)
    tiny[0, :3] = True
    for name in COLOR_MATCHERS.names():
        fn = COLOR_MATCHERS.get(name)
        out = fn(face, target, mask)
        assert out.shape == face.shape and out.dtype == np.uint8
        assert np.array_equal(fn(face, target, tiny), face)
    assert np.array_equal(COLOR_MATCHERS.get("none")(face, target, mask), face)


# -- blending ----------------------------------------------------------------------------------


def _patch(original: np.ndarray, face: np.ndarray) -> FacePatch:
    h, w = original.shape[:2]
    square = np.zeros((h, w), np.float32)
    square[10:-10, 10:-10] = 1
    region = np.zeros((h, w), np.uint8)
    cv2.ellipse(region, (w // 2, h // 2), (w // 3, h // 3), 0, 0, 360, 255, -1)
    return FacePatch((0, 0, w, h), face, square, region, size=float(w - 20))


def test_blenders_change_only_the_face_region(frame_and_face):
    frame, _ = frame_and_face
    original = frame[60:260, 220:420].copy()
    face = np.clip(original[::-1].astype(int) + 40, 0, 255).astype(np.uint8)  # other content
    patch = _patch(original, face)
    x, y, w, h = cv2.boundingRect(patch.region)
    in_box = np.zeros(patch.region.shape, bool)
    in_box[y : y + h, x : x + w] = True
    # mask: nothing outside the face region; poisson: its smooth spill stays in the region's box
    for name, outside in (("mask", patch.region == 0), ("poisson", ~in_box)):
        out = BLENDERS.get(name)(original, patch, BlendParams())
        assert np.abs(out.astype(int) - original)[outside].max() <= 1, name
        assert np.abs(out.astype(int) - original)[patch.region > 0].mean() > 10, name
    out = BLENDERS.get("overlay")(original, patch, BlendParams())
    assert np.array_equal(out, face)


def test_poisson_clone_leaves_the_face_where_it_is(frame_and_face):
    """The clone centre from the mask's own box: an unchanged face comes back unshifted."""
    frame, _ = frame_and_face
    original = frame[60:260, 220:420].copy()
    patch = _patch(original, np.clip(original.astype(int) + 25, 0, 255).astype(np.uint8))
    out = BLENDERS.get("poisson")(original, patch, BlendParams())
    inner = cv2.erode(patch.region, np.ones((15, 15), np.uint8)) > 0
    err = np.abs(out.astype(int) - original)[inner].mean()
    mask = (patch.region > 0).astype(np.uint8) * 255
    x, y = clone_centre(mask)
    shifted = cv2.seamlessClone(patch.face, original, mask, (x + 2, y), cv2.NORMAL_CLONE)
    assert err < 3 < np.abs(shifted.astype(int) - original)[inner].mean()


# -- geometry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("coverage", [1.0, 1.6])
def test_identity_model_swap_gives_the_frame_back(frame_and_face, coverage):
    """Cut, 'swap' with an identity model, warp back: matrices and ROI must line up exactly."""
    frame, lm = frame_and_face
    swapper = Swapper(
        identity_model(256, coverage),
        "b",
        COLOR_MATCHERS.get("none"),
        BLENDERS.get("overlay"),
        BlendParams(),
    )
    out = swapper.swap_frame(frame, [lm])
    diff = np.abs(out.astype(int) - frame).mean(-1)
    changed = diff > 0
    assert changed.sum() > 5000  # the face square was pasted
    assert np.percentile(diff[changed], 50) < 3 and diff.mean() < 1


def test_patch_roi_is_clipped_to_the_frame(frame_and_face):
    frame, lm = frame_and_face
    shifted = lm - [lm[:, 0].min() + 30, 0]  # the face half out of the left edge
    m = alignment_matrix(shifted, 64, 1.0)
    patch = make_patch(frame, np.zeros((64, 64, 3), np.uint8), m, shifted)
    assert patch is not None and patch.roi[0] == 0
    x0, y0, x1, y1 = patch.roi
    assert patch.face.shape[:2] == patch.region.shape == (y1 - y0, x1 - x0)
    away = shifted - [2000, 0]
    far = alignment_matrix(away, 64, 1.0)
    assert make_patch(frame, np.zeros((64, 64, 3), np.uint8), far, away) is None


# -- plans -------------------------------------------------------------------------------------


def test_steady_scale_smooths_size_and_keeps_centre(frame_and_face):
    _, lm = frame_and_face
    rng = np.random.default_rng(1)
    scales = 1 + 0.03 * rng.standard_normal(40)
    c = lm[INNER].mean(0)
    track = np.stack([c + (lm - c) * s for s in scales]).astype(np.float32)
    frames = np.arange(40)
    out = steady_scale(frames, track, 6.0)

    def size(x: np.ndarray) -> np.ndarray:
        inner = x[:, INNER]
        return np.sqrt(((inner - inner.mean(1, keepdims=True)) ** 2).sum(-1).mean(-1))

    assert np.std(np.diff(size(out))) < 0.2 * np.std(np.diff(size(track)))
    assert np.abs(out[:, INNER].mean(1) - track[:, INNER].mean(1)).max() < 1e-3
    assert np.array_equal(steady_scale(frames, track, 0.0), track)


def test_fill_between_interpolates_every_nth_frame():
    frames = np.array([0, 2, 4, 10])
    lms = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((4, 68, 2), np.float32)
    f, lm = fill_between(frames, lms, 2)
    assert f.tolist() == [0, 1, 2, 3, 4, 10]
    assert lm[1, 0, 0] == pytest.approx(0.5) and lm[3, 0, 0] == pytest.approx(1.5)


# -- labelling ---------------------------------------------------------------------------------


def test_frame_labeller_equals_embed_watermark(frame_and_face):
    from facetwin.label import detect_watermark, embed_watermark

    frame, _ = frame_and_face
    lab = FrameLabeller()
    first = lab(frame)
    second = lab(frame[::-1].copy())  # the fast path
    assert np.array_equal(first, embed_watermark(frame))
    assert np.abs(second.astype(int) - embed_watermark(frame[::-1].copy())).max() <= 1
    assert detect_watermark(second).found


# -- video I/O ---------------------------------------------------------------------------------


def test_segments_join_with_exact_timestamps_and_audio(tmp_path):
    """Segments of 7 frames, joined with the audio copied: frame count, pts and audio kept."""
    src = tmp_path / "clip.mp4"
    with av.open(str(WOMAN)) as inp, av.open(str(src), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for p in inp.demux():
            if p.size and (p.dts or 0) * p.time_base < 1.0:
                p.stream = streams[p.stream.index]
                out.mux(p)
    parts = tmp_path / "parts"
    parts.mkdir()
    timing = stream_timing(src)
    writer = SegmentWriter(parts, timing, EncodeSettings(crf=23, preset="veryfast"), 7)
    frames = list(decode_frames(src))
    for f in frames:
        writer.write(f.index, f.image, f.pts)
    writer.close()
    assert len(finished_segments(parts)) == -(-len(frames) // 7)
    n, audio = join_segments(list(writer.finished.values()), tmp_path / "out.mp4", src)
    assert n == len(frames) and audio == "copy"
    out_frames = list(decode_frames(tmp_path / "out.mp4"))
    assert [f.pts for f in out_frames] == [f.pts for f in frames]
    err = np.mean(
        [np.abs(a.image.astype(int) - b.image).mean() for a, b in zip(frames, out_frames)]
    )
    assert err < 3
    with av.open(str(src)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        pa = [(p.pts, bytes(p)) for p in a.demux(a.streams.audio[0]) if p.size]
        pb = [(p.pts, bytes(p)) for p in b.demux(b.streams.audio[0]) if p.size]
        assert pa == pb  # copied packet for packet
        assert b.streams.video[0].average_rate == a.streams.video[0].average_rate


def test_audio_the_container_cannot_hold_is_transcoded_to_aac(tmp_path):
    """PCM mu-law audio (fine in .mov) cannot go into .mp4: it becomes AAC, still starting
    where it started (here 0.25 s after the video)."""
    src = tmp_path / "mulaw.mov"
    with av.open(str(WOMAN)) as inp, av.open(str(src), "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        v = out.add_stream_from_template(vin)
        a = out.add_stream("pcm_mulaw", rate=8000, layout="mono")
        for p in inp.demux(vin):
            if p.size and p.dts is not None and p.dts * p.time_base < 0.5:
                p.stream = v
                out.mux(p)
        inp.seek(0)
        resample = av.AudioResampler(format="s16", layout="mono", rate=8000)
        samples = 0
        for frame in inp.decode(ain):
            if frame.pts * ain.time_base > 0.5:
                break
            for r in resample.resample(frame):
                r.pts, samples = 2000 + samples, samples + r.samples  # 2000 / 8000 Hz = 0.25 s
                for p in a.encode(r):
                    out.mux(p)
        for p in a.encode():
            out.mux(p)
    parts = tmp_path / "parts"
    parts.mkdir()
    writer = SegmentWriter(parts, stream_timing(src), EncodeSettings(preset="veryfast"), 100)
    for f in decode_frames(src):
        writer.write(f.index, f.image, f.pts)
    writer.close()
    n, audio = join_segments(list(writer.finished.values()), tmp_path / "out.mp4", src)
    assert audio == "aac"
    with av.open(str(tmp_path / "out.mp4")) as c:
        s = c.streams.audio[0]
        assert s.codec_context.name == "aac"
        frames = list(c.decode(s))
        start = frames[0].pts * s.time_base + 1024 / s.codec_context.sample_rate  # AAC priming
        assert abs(float(start) - 0.25) < 0.02
        assert sum(f.samples for f in frames) > 0.2 * s.codec_context.sample_rate


def test_truncated_video_is_an_input_error(tmp_path):
    data = WOMAN.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        check_complete(cut, 472)


def test_bad_options_are_usage_errors(tmp_path):
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.zeros((80, 80, 3), np.uint8))
    model = (Identity(), identity_model().meta)
    for cfg in (
        ConvertConfig(blend="smudge"),
        ConvertConfig(color="sepia"),
        ConvertConfig(direction="a2a"),
        ConvertConfig(crf=99),
    ):
        with pytest.raises(UsageError):
            convert(img, model, tmp_path / "o.png", cfg)
    with pytest.raises(InputError):
        convert(tmp_path / "missing.mp4", model, tmp_path / "o.mp4", ConvertConfig())


def test_odd_sized_video_is_padded_to_even_not_refused(tmp_path):
    """A 639x359 clip (a crop of the woman's, real frames): 4:2:0 H.264 needs even sizes, so
    the writer repeats the last column and row; every input pixel survives the round trip."""
    src = tmp_path / "clip.mp4"
    frames = [f for f in decode_frames(WOMAN)][:6]
    parts = tmp_path / "parts"
    parts.mkdir()
    timing = stream_timing(WOMAN)
    odd = StreamTiming(639, 359, timing.rate, timing.time_base)
    writer = SegmentWriter(parts, odd, EncodeSettings(crf=12, preset="veryfast"), 100)
    assert (writer.width, writer.height) == (640, 360)
    for f in frames:
        writer.write(f.index, f.image[:359, :639], f.pts)
    writer.close()
    join_segments(list(writer.finished.values()), src, None)
    out = list(decode_frames(src))
    assert len(out) == len(frames) and out[0].image.shape == (360, 640, 3)
    err = np.mean([np.abs(a.image[:359, :639].astype(int) - b.image[:359, :639]).mean()
                   for a, b in zip(out, frames)])  # fmt: skip
    assert err < 3
    # the added column repeats the last real one
    assert np.abs(out[0].image[:, 639].astype(int) - out[0].image[:, 638]).mean() < 3
    # lossless formats keep odd sizes as they are
    assert encoded_size((639, 359), EncodeSettings(pix_fmt="yuv444p")) == (639, 359)
    assert encoded_size((639, 359), EncodeSettings(pix_fmt="yuv422p")) == (640, 359)
    # and eval compares such an output with its odd-sized original
    from facetwin.eval.pipeline import unpad

    assert unpad(out[0].image, (359, 639, 3)).shape == (359, 639, 3)
    assert unpad(out[0].image, (358, 638, 3)).shape == (360, 640, 3)  # not a padding: left
