"""Occlusion handling in convert: what covers the face stays in front of the swapped face.

Everything is measured on real frames of the woman's clip. The occluders are real non-face
image regions (a flag, a curtain, a dark suit, a hand on an arm, from data/images/fr_obama.jpg)
pasted as an ellipse over the lower half of the face, so the occluder's pixels are known
exactly.

* Pure functions: ``occlusion_mask`` on a real aligned face with a stand-in reconstruction
  (the same crop, blurred and slightly recoloured: what a model that knows the face draws).
* Wiring, no training: a "model" that remembers the clean face (side a) and draws another real
  face (side b), through all three blenders.
* End to end (slow): a short-trained ``lite`` model, occluder pixels kept with and without the
  occlusion step, the clean face wrongly cut out, and the extra cost per frame. Run with ``-s``
  to see the figures.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import torch

from conftest import DATA, WOMAN, train_lite
from facetwin.convert import BLENDERS, COLOR_MATCHERS
from facetwin.convert.blend import BlendParams
from facetwin.convert.blend.mask import soft_mask
from facetwin.convert.occlusion import (
    OcclusionConfig,
    face_keep,
    feature_mask,
    mouth_mask,
    occluder_blobs,
    occlusion_mask,
)
from facetwin.convert.pipeline import ConvertConfig, Converter
from facetwin.convert.swap import SwapModel, Swapper, load_swap_model, make_patch
from facetwin.extract.detect import detect_full
from facetwin.extract.detectors import create_detector
from facetwin.extract.landmarks import landmarks_68
from facetwin.face.align import alignment_matrix, transform_points, warp_face
from facetwin.face.masks import face_mask
from facetwin.media.image import read_image
from facetwin.media.video import iter_frames

CROP = 64
#: Grey levels (max over RGB) within which an output pixel counts as the occluded frame's own.
TOL = 12

# -- real material -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Frames 40 and 300 of the woman's clip (no hand) and 200 (her hand on her mouth), each
    with its dlib 68 landmarks."""
    det = create_detector("dlib-hog")
    out = {}
    for i, f in iter_frames(WOMAN):
        if i in (40, 200, 300):
            out[i] = (f, landmarks_68(f, detect_full(det, f, 1280)[0].box))
        if i >= 300:
            break
    return out


@pytest.fixture(scope="module")
def textures() -> dict[str, np.ndarray]:
    """Real non-face regions of a photo: a flag, a curtain, a dark suit, a hand on an arm."""
    img = read_image(DATA / "images" / "fr_obama.jpg")
    return {
        "flag": img[200:1000, 0:120],
        "curtain": img[40:500, 140:300],
        "suit": img[600:760, 560:800],
        "hand": img[770:880, 560:740],
    }


def occluder_ellipse(shape: tuple[int, ...], lm: np.ndarray) -> np.ndarray:
    """bool mask: an ellipse over mouth and chin, about the lower half of the face."""
    mouth = lm[48:68].mean(0)
    w, h = lm[16, 0] - lm[0, 0], lm[8, 1] - lm[27, 1]
    mask = np.zeros(shape[:2], np.uint8)
    centre = (int(mouth[0]), int(mouth[1] + 0.1 * h))
    cv2.ellipse(mask, centre, (int(0.33 * w), int(0.3 * h)), 0, 0, 360, 255, -1)
    return mask > 0


def paste(image: np.ndarray, mask: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """``image`` with ``texture`` (resized to the mask's box) inside ``mask``."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    out = image.copy()
    sel = mask[y : y + h, x : x + w]
    out[y : y + h, x : x + w][sel] = cv2.resize(texture, (w, h))[sel]
    return out


def stand_in_reconstruction(crop: np.ndarray) -> np.ndarray:
    """What a model that knows this face draws: the face, blurrier and a little off in tone."""
    blurred = cv2.GaussianBlur(crop, (0, 0), 1.5)
    return np.clip(blurred.astype(np.int16) + (6, -3, 2), 0, 255).astype(np.uint8)


def aligned(frame: np.ndarray, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crop, face region, matrix) of the face at the lite model's size and coverage."""
    m = alignment_matrix(lm, CROP, 1.0)
    region = face_mask(transform_points(lm, m), CROP, "components")
    return warp_face(frame, m, CROP), region, m


def pasted_crop(
    frame: np.ndarray, lm: np.ndarray, m: np.ndarray, region: np.ndarray, texture: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(aligned crop of ``frame`` with ``texture`` pasted over mouth and chin, bool: where the
    pasted pixels fall inside the face region of the crop)."""
    occ = occluder_ellipse(frame.shape, lm)
    crop = warp_face(paste(frame, occ, texture), m, CROP)
    return crop, (warp_face(occ.astype(np.uint8) * 255, m, CROP) > 127) & (region > 0)


# -- the pure functions ------------------------------------------------------------------------


def test_mask_keeps_the_whole_face_when_nothing_covers_it(frames):
    for frame, lm in frames.values():
        if frame is frames[200][0]:
            continue
        crop, region, _ = aligned(frame, lm)
        keep = occlusion_mask(crop, stand_in_reconstruction(crop), region, OcclusionConfig())
        assert keep.dtype == np.float32 and keep.shape == (CROP, CROP)
        assert (keep[region > 0] < 0.5).mean() < 0.01


def test_mask_cuts_out_a_pasted_occluder(frames, textures):
    frame, lm = frames[40]
    clean, region, m = aligned(frame, lm)
    recon = stand_in_reconstruction(clean)
    for name, tex in textures.items():
        crop, occ_crop = pasted_crop(frame, lm, m, region, tex)
        keep = occlusion_mask(crop, recon, region, OcclusionConfig())
        assert keep.min() >= 0.0 and keep.max() <= 1.0
        assert (keep[occ_crop] < 0.5).mean() > 0.9, name
        # the rest of the face, a few pixels away from the occluder's edge, stays swapped
        near = cv2.dilate(occ_crop.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        assert (keep[(region > 0) & ~near] < 0.5).mean() < 0.05, name


def test_small_blobs_are_ignored_and_the_edge_is_soft(frames, textures):
    frame, lm = frames[40]
    crop, region, _ = aligned(frame, lm)
    recon = stand_in_reconstruction(crop)
    dot = crop.copy()
    cv2.circle(dot, (32, 40), 2, (20, 20, 160), -1)  # a few pixels: like a blemish or a tooth
    cfg = OcclusionConfig()
    assert not occluder_blobs(dot, recon, region, cfg).any()
    big = crop.copy()
    big[36:56, 16:48] = cv2.resize(textures["flag"], (32, 20))
    keep = occlusion_mask(big, recon, region, cfg)
    assert keep[44, 32] < 0.05 and keep[20, 32] > 0.95
    assert ((keep > 0.05) & (keep < 0.95)).any()  # feathered, not a hard cut
    hard = occlusion_mask(big, recon, region, OcclusionConfig(feather=0.0, grow=0.0))
    assert set(np.unique(hard)) == {0.0, 1.0}


def test_eyes_the_model_draws_open_are_not_occluders(frames):
    """Frame 40 has her eyes shut; a reconstruction with open eyes (frame 300's, both real)
    is what a briefly trained model draws. The higher threshold on the eyes keeps them."""
    (f40, lm40), (f300, lm300) = frames[40], frames[300]
    crop, region, m = aligned(f40, lm40)
    eyes = feature_mask(transform_points(lm40, m), CROP)
    assert 0.03 < eyes.mean() < 0.2
    recon = stand_in_reconstruction(crop)
    recon[eyes] = stand_in_reconstruction(aligned(f300, lm300)[0])[eyes]
    plain = occlusion_mask(crop, recon, region, OcclusionConfig())
    with_eyes = occlusion_mask(crop, recon, region, OcclusionConfig(), eyes)
    cut_plain = float((plain[region > 0] < 0.5).mean())
    cut_eyes = float((with_eyes[region > 0] < 0.5).mean())
    print(
        f"\n[occlusion] shut eyes vs open: cut {cut_plain:.3f} of the face, "
        f"{cut_eyes:.3f} with the eye threshold"
    )
    assert cut_eyes < 0.01
    # the eye threshold is what keeps them: at the plain threshold the open eyes are cut out
    assert cut_plain > 0.02


def test_a_mouth_the_model_draws_differently_is_not_an_occluder(frames, textures):
    """Frame 40's mouth is closed; a reconstruction with frame 300's smile (teeth; both real)
    is what a model draws that gets the mouth wrong - or sharper than the frame. The plain
    threshold cuts it out (the frame's own mouth would show through the swap); the mouth
    guard drops a blob that lies in the mouth's opening, and keeps occluders that reach beyond
    it."""
    (f40, lm40), (f300, lm300) = frames[40], frames[300]
    crop, region, m = aligned(f40, lm40)
    lm_crop = transform_points(lm40, m)
    mouth = mouth_mask(lm_crop, CROP)
    assert 0.05 < mouth.mean() < 0.16 and mouth[tuple(np.round(lm_crop[62, ::-1]).astype(int))]
    recon = stand_in_reconstruction(crop)
    recon[mouth] = stand_in_reconstruction(aligned(f300, lm300)[0])[mouth]
    plain = occlusion_mask(crop, recon, region, OcclusionConfig())
    guarded = face_keep(crop, recon, lm_crop, OcclusionConfig())
    cut_plain = float((plain[region > 0] < 0.5).mean())
    cut_guarded = float((guarded[region > 0] < 0.5).mean())
    print(f"\n[occlusion] smile drawn on a closed mouth: cut {cut_plain:.3f} -> {cut_guarded:.3f}")
    assert cut_plain > 0.03 and cut_guarded < 0.005
    # every pasted occluder over mouth and chin is still cut, with the guard on
    clean_recon = stand_in_reconstruction(crop)
    for name, tex in textures.items():
        pasted, occ_crop = pasted_crop(f40, lm40, m, region, tex)
        keep = face_keep(pasted, clean_recon, lm_crop, OcclusionConfig())
        assert (keep[occ_crop] < 0.5).mean() > 0.9, name


def test_an_empty_region_changes_nothing(frames):
    frame, lm = frames[40]
    crop, _, _ = aligned(frame, lm)
    empty = np.zeros((CROP, CROP), np.uint8)
    keep = occlusion_mask(crop, 255 - crop, empty, OcclusionConfig())
    assert (keep == 1).all()


def test_the_scale_adapts_to_how_well_the_model_reconstructs(frames, textures):
    """A blurrier, more off-tone reconstruction disagrees everywhere; normalised by the median
    it still marks the occluder and not the face."""
    frame, lm = frames[40]
    clean, region, m = aligned(frame, lm)
    poor = cv2.GaussianBlur(clean, (0, 0), 3.0)
    poor = np.clip(poor.astype(np.int16) + (18, -8, 10), 0, 255).astype(np.uint8)
    crop, occ_crop = pasted_crop(frame, lm, m, region, textures["curtain"])
    keep = occlusion_mask(crop, poor, region, OcclusionConfig())
    assert (keep[occ_crop] < 0.5).mean() > 0.8
    keep_clean = occlusion_mask(clean, poor, region, OcclusionConfig())
    assert (keep_clean[region > 0] < 0.5).mean() < 0.05


# -- wiring: a model that remembers the clean face ---------------------------------------------


class Remembers(torch.nn.Module):
    """Side a draws the clean face of one frame (blurred), side b another real face of the
    same clip: a stand-in for a trained model that knows A's face but not what covers it."""

    def __init__(self, own: np.ndarray, other: np.ndarray) -> None:
        super().__init__()
        self.faces = torch.nn.ParameterDict(
            {
                side: torch.nn.Parameter(torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255)
                for side, f in (("a", stand_in_reconstruction(own)), ("b", other))
            }
        )

    def forward(self, x: torch.Tensor, side: str) -> torch.Tensor:
        return self.faces[side].expand(len(x), -1, -1, -1)


@pytest.fixture(scope="module")
def remembering(frames) -> SwapModel:
    (f40, lm40), (f300, lm300) = frames[40], frames[300]
    net = Remembers(aligned(f40, lm40)[0], aligned(f300, lm300)[0])
    meta = {"arch": "test", "input_size": CROP, "coverage": 1.0, "model_id": "remembers"}
    return SwapModel(net.eval(), meta)


def pasted_region(frame: np.ndarray, lm: np.ndarray, size: int, coverage: float) -> np.ndarray:
    """bool, frame: where the mask blender replaces the face (soft alpha >= 0.5)."""
    m = alignment_matrix(lm, size, coverage)
    patch = make_patch(frame, np.zeros((size, size, 3), np.uint8), m, lm)
    assert patch is not None
    out = np.zeros(frame.shape[:2], bool)
    x0, y0, x1, y1 = patch.roi
    out[y0:y1, x0:x1] = soft_mask(patch, BlendParams()) >= 0.5
    return out


def kept(out: np.ndarray, original: np.ndarray, where: np.ndarray) -> float:
    """Share of ``where`` where ``out`` is still ``original`` (within TOL grey levels)."""
    return float((np.abs(out.astype(int) - original).max(-1) <= TOL)[where].mean())


@pytest.mark.parametrize("blend", ["overlay", "mask", "poisson"])
def test_every_blender_leaves_the_occluder_in_front(blend, frames, textures, remembering):
    frame, lm = frames[40]
    occ = occluder_ellipse(frame.shape, lm)
    covered = paste(frame, occ, textures["flag"])
    where = occ & pasted_region(frame, lm, CROP, 1.0)
    # away from the occluder's feathered edge
    inner = cv2.erode(where.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0

    def swapper(occlusion: OcclusionConfig | None) -> Swapper:
        return Swapper(
            remembering,
            "b",
            COLOR_MATCHERS.get("rct"),
            BLENDERS.get(blend),
            BlendParams(),
            source_side="a",
            occlusion=occlusion,
        )

    with_occ = swapper(OcclusionConfig()).swap_frame(covered, [lm])
    without = swapper(None).swap_frame(covered, [lm])
    assert kept(with_occ, covered, inner) > 0.95
    assert kept(without, covered, inner) < 0.1
    # on the clean frame the occlusion step changes (almost) nothing
    clean = pasted_region(frame, lm, CROP, 1.0)
    a = swapper(OcclusionConfig()).swap_frame(frame, [lm])
    b = swapper(None).swap_frame(frame, [lm])
    assert (np.abs(a.astype(int) - b).max(-1) > TOL)[clean].mean() < 0.02


def test_converter_wires_occlusion_from_the_config(remembering):
    on = Converter(remembering, ConvertConfig(progress=False))
    assert on.swapper.occludes and on.swapper.source_side == "a" and on.swapper.side == "b"
    off = Converter(remembering, ConvertConfig(progress=False, occlusion=False))
    assert not off.swapper.occludes
    back = Converter(remembering, ConvertConfig(progress=False, direction="b2a"))
    assert back.swapper.source_side == "b"


# -- end to end: a short-trained model ---------------------------------------------------------

#: Training of the end-to-end model: lite is 64 px; a raised learning rate gets a face the
#: model recognises as its own (blurry, the right tone and layout) in few iterations.
TRAIN_ITERATIONS = 60
TRAIN_LR = 3e-4


@pytest.fixture(scope="module")
def lite_model(tmp_path_factory, faceset_woman, faceset_man) -> SwapModel:
    """lite, A = the woman, B = the man, trained for ``TRAIN_ITERATIONS``."""
    out = tmp_path_factory.mktemp("model") / "lite_occlusion"
    train_lite(faceset_woman, faceset_man, out, TRAIN_ITERATIONS, lr=TRAIN_LR)
    return load_swap_model(out, "cpu")


def occlusion_figures(
    model: SwapModel,
    frames: dict[int, tuple[np.ndarray, np.ndarray]],
    textures: dict[str, np.ndarray],
    clean_frames: tuple[int, ...] = (40, 300),
) -> dict[str, float]:
    """Shares measured on the output frames (mask blender, rct colour):

    kept_on / kept_off: occluder pixels (inside what the blender replaces) that still show the
    occluder, with / without the occlusion step; cut: pixels of a clean face that the occlusion
    step leaves original (wrongly cut out); ms_off / ms_on: convert time per frame.
    """

    def swapper(occlusion: bool) -> Swapper:
        return Swapper(
            model,
            "b",
            COLOR_MATCHERS.get("rct"),
            BLENDERS.get("mask"),
            BlendParams(),
            source_side="a",
            occlusion=OcclusionConfig(enabled=occlusion),
        )

    on, off = swapper(True), swapper(False)
    kept_on, kept_off, cut = [], [], []
    per_texture: dict[str, list[float]] = {name: [] for name in textures}
    for i in clean_frames:
        frame, lm = frames[i]
        face = pasted_region(frame, lm, model.input_size, model.coverage)
        a, b = on.swap_frame(frame, [lm]), off.swap_frame(frame, [lm])
        same = np.abs(a.astype(int) - frame).max(-1) <= TOL
        changed = np.abs(b.astype(int) - frame).max(-1) > TOL
        cut.append(float((same & changed)[face].sum() / max(1, changed[face].sum())))
        occ = occluder_ellipse(frame.shape, lm)
        where = occ & face
        for name, tex in textures.items():
            covered = paste(frame, occ, tex)
            k_on = kept(on.swap_frame(covered, [lm]), covered, where)
            kept_on.append(k_on)
            kept_off.append(kept(off.swap_frame(covered, [lm]), covered, where))
            per_texture[name].append(k_on)
    timing = {}
    frame, lm = frames[200]
    for name, sw in (("ms_off", off), ("ms_on", on)):
        best = np.inf
        for _ in range(5):
            t0 = time.perf_counter()
            sw.swap_frame(frame, [lm])
            best = min(best, time.perf_counter() - t0)
        timing[name] = 1e3 * best
    return {
        "kept_on": float(np.mean(kept_on)),
        "kept_off": float(np.mean(kept_off)),
        "cut": float(np.mean(cut)),
        **{f"kept_on_{k}": float(np.mean(v)) for k, v in per_texture.items()},
        **timing,
    }


@pytest.mark.slow
def test_trained_model_keeps_occluders_in_front(lite_model, frames, textures):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the timing: one thread is steadier on a busy machine
    try:
        fig = occlusion_figures(lite_model, frames, textures)
    finally:
        torch.set_num_threads(threads)
    print("\n[occlusion] " + ", ".join(f"{k} {v:.3f}" for k, v in fig.items()))
    assert fig["kept_on"] >= 0.7
    assert fig["kept_off"] < 0.1
    assert fig["cut"] < 0.05
