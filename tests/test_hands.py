"""Hands in front of a face (issue 16, occluders): found on the woman's real hand frames, not on
hand-free faces, cut out of the face set's masks (and so out of training's ``valid`` map) and
kept by convert; a face set made before the cuts still opens and resumes.

The pasted-hand bound comes from benchmarks/results/occluders-cpu.json, where the hull growth
was chosen on the man's frames; here the hand goes onto frames and a still that the bound was
not read from."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import MAN, WOMAN
from facetwin.convert.blend import BLENDERS, BlendParams
from facetwin.convert.color import COLOR_MATCHERS
from facetwin.convert.occlusion import OcclusionConfig, hand_keep
from facetwin.convert.swap import SwapModel, Swapper
from facetwin.extract.analyse import analyse_face
from facetwin.extract.detect import detect_full
from facetwin.extract.detectors import create_detector
from facetwin.extract.hands import (
    PHOTO_SCALES,
    VIDEO_SCALES,
    HandFinder,
    anchors,
    hand_polygon,
    hands_mask,
)
from facetwin.extract.landmarks import landmarks_68
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.face.align import alignment_matrix, compose, invert, warp_face
from facetwin.face.masks import EDGE_CUT, OCCLUDER_CUT, apply_cuts, cut_of
from facetwin.faceset import FaceSet
from facetwin.media.image import read_image, write_image
from facetwin.media.video import iter_frames
from facetwin.train.data import load_bank

HAND_FRAME = 120  # her right hand over nose and mouth
CLEAN_STILLS = ("0-f1-su-ph.jpg", "fr_obama.jpg", "grace_hopper_512x512.jpg", "single_face.jpg")


@pytest.fixture(scope="module")
def det():  # type: ignore[no-untyped-def]
    return create_detector("dlib-hog", "cpu", {})


@pytest.fixture(scope="module")
def finder() -> HandFinder:
    return HandFinder()


@pytest.fixture(scope="module")
def woman_frames() -> dict[int, np.ndarray]:
    return {i: f for i, f in iter_frames(WOMAN) if i in (10, HAND_FRAME, 300)}


def test_palm_anchors_are_the_2016_of_the_model() -> None:
    a = anchors()
    assert a.shape == (2016, 2) and a.min() > 0 and a.max() < 1


def test_her_hand_is_found_over_her_face(det, finder, woman_frames) -> None:  # type: ignore[no-untyped-def]
    frame = woman_frames[HAND_FRAME]
    box = detect_full(det, frame, 1280)[0].box
    hands = finder.near(frame, box)
    assert len(hands) == 1 and hands[0].score > 0.8
    # the hand covers the lower middle of her face box (nose and mouth), not its top
    x0, y0, x1, y1 = (int(v) for v in box)
    cover = hands[0].mask(frame.shape)[y0:y1, x0:x1] > 0
    assert 0.15 < cover.mean() < 0.8
    assert cover[(y1 - y0) // 2 :].mean() > cover[: (y1 - y0) // 4].mean()


def test_no_hand_on_hand_free_faces(det, finder, woman_frames, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    images = [woman_frames[10], woman_frames[300]]
    images += [f for i, f in iter_frames(MAN) if i % 12 == 0]
    images += [read_image(data_dir / "images" / n) for n in CLEAN_STILLS]
    faces = 0
    for img in images:
        for d in detect_full(det, img, 1280):
            faces += 1
            assert finder.near(img, d.box) == []
    assert faces >= len(images)
    for name in CLEAN_STILLS:  # the photo search too (fr_obama's folded hands are not near)
        img = read_image(data_dir / "images" / name)
        assert all(finder.near(img, d.box, PHOTO_SCALES) == [] for d in detect_full(det, img, 1280))


def paste_hand(
    frame: np.ndarray,
    hand_matrix: np.ndarray,
    points: np.ndarray,
    target: np.ndarray,
    target_matrix: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``target`` with her hand (the tight hull of its points) pasted through the two faces'
    alignment: the pasted image and the pasted pixels (the occluder's known mask)."""
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hand_polygon(points, 0.12), 255)
    m = compose(invert(target_matrix), hand_matrix)
    h, w = target.shape[:2]
    img = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_NEAREST)
    return np.where(alpha[..., None] > 0, img, target), alpha


def test_a_pasted_hand_is_out_of_the_face_mask(det, finder, woman_frames, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    frame = woman_frames[HAND_FRAME]
    d = detect_full(det, frame, 1280)[0]
    hand = finder.near(frame, d.box)[0]
    her = analyse_face(frame, d, 256, 2.0).matrix
    targets = [f for i, f in iter_frames(MAN) if i in (30, 66)]
    targets.append(read_image(data_dir / "images" / "fr_biden.jpg"))
    for target in targets:
        clean = detect_full(det, target, 1280)[0]
        pasted, alpha = paste_hand(
            frame, her, hand.points, target, analyse_face(target, clean, 256, 2.0).matrix
        )
        found = detect_full(det, pasted, 1280)
        face = found[0] if found else clean
        polys = [h.polygon for h in finder.near(pasted, face.box)]
        fd = analyse_face(pasted, face, 256, 2.0, hands=polys)
        truth = cv2.warpAffine(alpha, fd.matrix, (256, 256), flags=cv2.INTER_NEAREST) > 0
        visible = (fd.masks >= 128) & ~truth
        assert (fd.masks[truth] < 128).mean() >= 0.8  # the hand is left out of the face mask
        assert (fd.masks[visible] == OCCLUDER_CUT).mean() <= 0.15  # little visible face cut
        keep = hand_keep(polys, fd.matrix, 256, OcclusionConfig())
        assert (keep[truth] < 0.5).mean() >= 0.8  # convert keeps the frame's hand


def test_a_photo_is_searched_wider_where_the_face_square_finds_no_hand(  # type: ignore[no-untyped-def]
    det, finder, woman_frames, data_dir: Path
) -> None:
    """PHOTO_SCALES were chosen on the man's frames; here her hand goes onto a still that the
    video's single square misses it on, and the wider squares find it."""
    frame = woman_frames[HAND_FRAME]
    d = detect_full(det, frame, 1280)[0]
    hand = finder.near(frame, d.box)[0]
    her = analyse_face(frame, d, 256, 2.0).matrix
    target = read_image(data_dir / "images" / "0-f1-su-ph.jpg")
    clean = detect_full(det, target, 1280)[0]
    pasted, alpha = paste_hand(
        frame, her, hand.points, target, analyse_face(target, clean, 256, 2.0).matrix
    )
    face = (detect_full(det, pasted, 1280) or [clean])[0]
    assert finder.near(pasted, face.box, VIDEO_SCALES) == []
    polys = [h.polygon for h in finder.near(pasted, face.box, PHOTO_SCALES)]
    fd = analyse_face(pasted, face, 256, 2.0, hands=polys)
    truth = cv2.warpAffine(alpha, fd.matrix, (256, 256), flags=cv2.INTER_NEAREST) > 0
    assert (fd.masks[truth] < 128).mean() >= 0.8


def test_cut_values_read_as_not_face_and_are_told_apart() -> None:
    masks = np.array([[255, 128, 0, 255]], np.uint8)
    cut = apply_cuts(masks, occluder=np.array([[1, 0, 0, 0]]), outside=np.array([[1, 1, 0, 0]]))
    assert cut.tolist() == [[OCCLUDER_CUT, EDGE_CUT, 0, 255]]
    assert (cut >= 128).tolist() == [[False, False, False, True]]
    assert cut_of(cut, "occluder").tolist() == [[255, 0, 0, 0]]
    assert cut_of(cut).tolist() == [[255, 255, 0, 0]]


def test_a_hand_frame_is_cut_in_the_face_set_and_out_of_training(
    tmp_path: Path, woman_frames
) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "hand.png"
    write_image(photo, woman_frames[HAND_FRAME])
    extract([photo], tmp_path / "fs", ExtractConfig(progress=False))
    with FaceSet.open(tmp_path / "fs") as fs:
        assert fs.settings()["hands_every"] == 8
        rec = fs.faces()[0]
        cut = fs.load_cut(rec, "occluder") > 0
        assert 0.05 < cut.mean() < 0.5
        assert not (fs.load_mask(rec, "extended")[cut]).any()
        bank = load_bank(fs, 64, 2.0)
    assert bank.valid is not None
    # the crop's hand pixels are out of the loss and of the face mask
    assert (bank.valid[0] == 0).mean() > 0.03
    assert not bank.masks[0][bank.valid[0] == 0].any()


def test_a_face_set_made_before_the_cuts_opens_and_resumes(
    tmp_path: Path, woman_frames, data_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "hand.png"
    write_image(photo, woman_frames[HAND_FRAME])
    out = tmp_path / "old"
    extract([photo], out, ExtractConfig(progress=False, hands_every=0))  # as before the cuts
    with FaceSet.open(out) as fs:
        assert "hands_every" not in fs.settings()
        assert not fs.load_cut(fs.faces()[0]).any()
    # a default run adds to it without the cuts instead of refusing it or mixing the two
    extract([photo, data_dir / "images" / "fr_obama.jpg"], out, ExtractConfig(progress=False))
    with FaceSet.open(out) as fs:
        assert "hands_every" not in fs.settings()
        assert all(not fs.load_cut(r).any() for r in fs.faces())
        assert len(load_bank(fs, 64, 2.0)) == 2  # train reads it as before


# -- convert's hand schedule -------------------------------------------------------------------

SCHEDULED = range(56, 105)  # her hand comes over her face at frame 66 and stays past 104
CROP = 64


class DrawsOne(torch.nn.Module):
    """Side b draws one real face (her aligned frame 300) whatever it is given: a stand-in for a
    trained model, which draws no hand either."""

    def __init__(self, face: np.ndarray) -> None:
        super().__init__()
        self.face = torch.nn.Parameter(torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255)

    def forward(self, x: torch.Tensor, side: str) -> torch.Tensor:
        return self.face.expand(len(x), -1, -1, -1)


class CountingFinder(HandFinder):
    """The real finder, counting its searches."""

    calls = 0

    def near(self, image, box, scales=VIDEO_SCALES):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().near(image, box, scales)


@pytest.fixture(scope="module")
def hand_clip(det) -> list[tuple[int, np.ndarray, np.ndarray]]:  # type: ignore[no-untyped-def]
    """(index, frame, landmarks) of her frames SCHEDULED and 300."""
    out = []
    for i, f in iter_frames(WOMAN):
        if i in SCHEDULED or i == 300:
            out.append((i, f, landmarks_68(f, detect_full(det, f, 1280)[0].box)))
        if i >= 300:
            break
    return out


@pytest.fixture(scope="module")
def draws_one(hand_clip) -> SwapModel:  # type: ignore[no-untyped-def]
    _, f300, lm300 = hand_clip[-1]
    face = warp_face(f300, alignment_matrix(lm300, CROP, 1.0), CROP)
    meta = {"arch": "test", "input_size": CROP, "coverage": 1.0, "model_id": "draws-one"}
    return SwapModel(DrawsOne(face).eval(), meta)


def swapper(model: SwapModel, hands: bool) -> Swapper:
    return Swapper(
        model, "b", COLOR_MATCHERS.get("rct"), BLENDERS.get("mask"), BlendParams(),
        occlusion=OcclusionConfig(hands=hands), hand_finder=CountingFinder(),
    )  # fmt: skip


def test_convert_keeps_her_hand_on_its_schedule(hand_clip, draws_one, finder) -> None:  # type: ignore[no-untyped-def]
    """Searched every 8th frame and while a hand stays, the hand is kept in nearly every frame
    it covers her face; without the search it is painted over."""
    clip = hand_clip[:-1]
    on, off = swapper(draws_one, True), swapper(draws_one, False)
    errors: dict[str, list[float]] = {"on": [], "off": []}
    for i, frame, lm in clip:
        outs = {"on": on.swap_frame(frame, [lm], i % 240), "off": off.swap_frame(frame, [lm], i)}
        hull = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(lm.astype(np.int32)), 255)
        hands = finder.near(frame, (*lm.min(0), *lm.max(0)))
        region = (hands_mask(hands, frame.shape) > 0) & (hull > 0) if hands else None
        if region is not None and region.any():
            for k, out in outs.items():
                errors[k].append(float(np.abs(out.astype(int) - frame)[region].mean()))
    assert len(errors["on"]) > 25  # her hand is over her face in most of these frames
    assert np.mean(errors["on"]) < 4 < 10 < np.mean(errors["off"])
    # before the hand comes (56-65) only the 8th frames are searched
    assert isinstance(on.hand_finder, CountingFinder)
    assert len(clip) - 8 <= on.hand_finder.calls < len(clip)


def test_segments_render_as_a_whole_run(hand_clip, draws_one) -> None:  # type: ignore[no-untyped-def]
    """A swapper started afresh at each 16-frame segment (a resumed or Ray conversion) draws
    exactly what one swapper carried through all of them draws."""
    whole = swapper(draws_one, True)
    fresh = None
    for i, frame, lm in hand_clip[:-1]:
        if fresh is None or i % 16 == 0:
            fresh = swapper(draws_one, True)
        a = whole.swap_frame(frame, [lm], i % 16)
        b = fresh.swap_frame(frame, [lm], i % 16)
        assert np.array_equal(a, b), f"frame {i}"


class Redraws(torch.nn.Module):
    """Side a: a same-identity reconstruction as a trained model draws it - the face it is given,
    a little blurred, but where a hand covers it the face it knows (``known``, a hand-free
    frame: no model has learnt the hand). Side b draws another real face."""

    def __init__(self, other: np.ndarray) -> None:
        super().__init__()
        self.own = other
        self.other = other

    def forward(self, x: torch.Tensor, side: str) -> torch.Tensor:
        face = cv2.GaussianBlur(self.own, (0, 0), 1.0) if side == "a" else self.other
        return (torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255).expand(
            len(x), -1, -1, -1
        )


def test_a_hand_the_reconstruction_sees_is_looked_for_at_once(hand_clip) -> None:  # type: ignore[no-untyped-def]
    """With the same-identity reconstruction, a hand coming in between two scheduled searches
    is looked for on the frame it comes, not up to 7 frames later; a face it redraws well
    starts no search."""
    crop = {i: warp_face(f, alignment_matrix(lm, CROP, 1.0), CROP) for i, f, lm in hand_clip}
    net = Redraws(crop[300])
    meta = {"arch": "test", "input_size": CROP, "coverage": 1.0, "model_id": "redraws"}
    sw = Swapper(
        SwapModel(net.eval(), meta), "b", COLOR_MATCHERS.get("rct"), BLENDERS.get("mask"),
        BlendParams(), source_side="a", occlusion=OcclusionConfig(), hand_finder=CountingFinder(),
    )  # fmt: skip
    searched = []
    for i, frame, lm in hand_clip[:-1]:
        if i > 72:
            break
        net.own = crop[i] if i < 59 else crop[58]  # the finder sees her hand from frame 59
        before = sw.hand_finder.calls  # type: ignore[union-attr]
        sw.swap_frame(frame, [lm], i)
        if sw.hand_finder.calls > before:  # type: ignore[union-attr]
            searched.append(i)
    print(f"\n[hands] searched at {searched}")
    # the schedule (56) while the face is redrawn well; then from the hand's first frame on,
    # not from the next scheduled one (64)
    assert searched == [56, *range(59, 73)]
