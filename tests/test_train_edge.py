"""Faces cut by the frame's edge (issue 16): what lies past the edge is not learned.

The aligned crop of such a face fills the missing side with replicated edge pixels (streaks).
The man's real clip, cut so that a third of his face is outside the frame, must give training
crops whose ``valid`` map is 0 there, a face mask that stops at the edge, and a loss that does
not change whatever the model draws past the edge.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from conftest import MAN
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.faceset import FaceSet
from facetwin.media.video import iter_frames
from facetwin.train.augment import AugmentConfig
from facetwin.train.data import load_bank, make_side_batch
from facetwin.train.losses import compute_loss, parse_loss


@pytest.fixture(scope="module")
def cut_faceset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 frames of the man with the frame's left edge through his face (x >= 250 kept)."""
    tmp = tmp_path_factory.mktemp("edge")
    clip = tmp / "man_cut.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 390, 360, "yuv420p"
        for i, frame in iter_frames(MAN):
            if i >= 24:
                break
            cut = np.ascontiguousarray(frame[:, 250:])
            out.mux(stream.encode(av.VideoFrame.from_ndarray(cut, format="rgb24")))
        out.mux(stream.encode(None))
    fs = tmp / "fs"
    extract([clip], fs, ExtractConfig(progress=False))
    return fs


def test_the_part_past_the_edge_is_marked_and_out_of_the_face_mask(cut_faceset: Path) -> None:
    with FaceSet.open(cut_faceset) as fs:
        bank = load_bank(fs, 64, 1.0)
    assert bank.valid is not None and len(bank) >= 20
    side = bank.valid.shape[1]
    # the face's right side in the image (its left edge is where the frame was cut) is missing:
    # the crops' left columns are invalid, the right ones valid
    assert (bank.valid[:, :, : side // 8] == 0).mean() > 0.9
    assert (bank.valid[:, :, -side // 4 :] == 255).all()
    assert not (bank.masks[bank.valid == 0]).any()


def test_the_loss_ignores_what_is_drawn_past_the_edge(cut_faceset: Path) -> None:
    with FaceSet.open(cut_faceset) as fs:
        bank = load_bank(fs, 64, 1.0)
    batch = make_side_batch(bank, np.arange(4), np.random.default_rng(0), AugmentConfig())
    f = {k: v.float() / 255 for k, v in batch.items()}
    assert (f["valid"] < 1).any()
    spec = parse_loss("l1+ssim_half")
    pred = f["target"].clone()
    base = compute_loss(spec, pred, f["target"], f["mask"], f["regions"], f["valid"])
    outside = (f["valid"] == 0).expand_as(pred)
    streaks = pred.clone()
    streaks[outside] = torch.rand(int(outside.sum()))
    moved = compute_loss(spec, streaks, f["target"], f["mask"], f["regions"], f["valid"])
    assert float(moved) == pytest.approx(float(base), abs=1e-6)
    # without the map the same streaks would be learned against
    plain = compute_loss(spec, streaks, f["target"], f["mask"], f["regions"])
    assert float(plain) > float(base) + 0.01


def test_faces_inside_their_frame_have_no_map(faceset_man: Path) -> None:
    with FaceSet.open(faceset_man) as fs:
        assert load_bank(fs, 64, 1.0).valid is None
