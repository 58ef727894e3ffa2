"""Augmentation and data pipeline properties, on real aligned faces from the bundled clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from facetwin.errors import UsageError
from facetwin.faceset import FaceSet
from facetwin.train.augment import AugmentConfig, augment, warp_field
from facetwin.train.data import (
    PairDataset,
    batch_indices,
    context_side,
    load_bank,
    make_loader,
)
from facetwin.train.losses import compute_loss, parse_loss


@pytest.fixture(scope="module")
def bank(faceset_woman):
    with FaceSet.open(faceset_woman) as fs:
        return load_bank(fs, 64, 1.0)


def test_bank_crops_the_faces(bank):
    assert bank.sources.shape[1:] == (96, 96, 3) and bank.sources.dtype == np.uint8
    assert len(bank) > 100
    plain = bank.plain(0)
    assert plain.shape == (64, 64, 3)
    # Eyes (36-47) sit in the upper half of the tight crop, the mouth (48-67) in the lower half.
    marks = bank.landmarks[0] + bank.base[:, 2]
    assert marks[36:48, 1].mean() < 32 < marks[48:68, 1].mean()
    assert marks[36:68, 0].min() > 0 and marks[36:68, 0].max() < 64
    with pytest.raises(UsageError, match="wider than the face set"):
        context_side(64, 2.5, 2.0)


def test_identity_augmentation_returns_the_plain_crop(bank):
    rng = np.random.default_rng(0)
    for i in (0, len(bank) // 2):
        aug = augment(bank.sources[i], bank.masks[i], bank.landmarks[i], bank.base, 64, rng,
                      AugmentConfig.none())  # fmt: skip
        assert np.array_equal(aug.target, bank.plain(i))
        assert np.array_equal(aug.warped, bank.plain(i))
        assert np.allclose(aug.similarity, [[1, 0, 0], [0, 1, 0]])
    mapx, mapy = warp_field(np.zeros((5, 5, 2)), 64)
    ys, xs = np.mgrid[0:64, 0:64]
    assert np.array_equal(mapx, xs) and np.array_equal(mapy, ys)


def test_random_warp_target_is_the_face_under_a_similarity(bank):
    """Inverting the fitted similarity brings the target back onto the un-warped crop, while
    the warped input differs from it non-rigidly."""
    cfg = AugmentConfig(rotation=0, zoom=0, shift=0, flip=0, colour=False, warp=0.04)
    i = 10
    plain = bank.plain(i).astype(np.float32)
    target_err, warped_err = [], []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        aug = augment(bank.sources[i], bank.masks[i], bank.landmarks[i], bank.base, 64, rng, cfg)
        assert aug.warped.shape == aug.target.shape == (64, 64, 3)
        back = cv2.warpAffine(aug.target, cv2.invertAffineTransform(aug.similarity), (64, 64),
                              flags=cv2.INTER_LINEAR)  # fmt: skip
        inner = (slice(12, 52), slice(12, 52))
        target_err.append(np.abs(back[inner] - plain[inner]).mean())
        warped_err.append(np.abs(aug.warped[inner].astype(np.float32) - plain[inner]).mean())
        assert not np.allclose(aug.similarity, [[1, 0, 0], [0, 1, 0]])
    # Only interpolation blur is left after undoing the similarity (a few grey levels).
    assert max(target_err) < 4.0
    assert np.mean(warped_err) > 2 * np.mean(target_err)


def test_batches_are_deterministic_in_range_and_independent_of_workers(bank):
    ds = PairDataset({"a": bank, "b": bank}, batch=4, seed=7, augment_cfg=AugmentConfig())
    item = ds[3]
    assert item["iteration"] == 3
    warped = item["a"]["warped"]
    assert warped.shape == (4, 3, 64, 64) and warped.dtype == torch.uint8
    x = warped.float() / 255
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert item["a"]["mask"].shape == item["a"]["regions"].shape == (4, 1, 64, 64)
    assert item["a"]["regions"].float().mean() > 0  # eyes and mouth are marked
    again = ds[3]
    for k in ("warped", "target", "mask", "regions"):
        assert torch.equal(item["a"][k], again["a"][k])
    assert not torch.equal(item["a"]["warped"], item["b"]["warped"])  # sides draw separately
    serial = list(make_loader(ds, 2, 6, workers=0))
    parallel = list(make_loader(ds, 2, 6, workers=2))
    assert [b["iteration"] for b in parallel] == [2, 3, 4, 5]
    for s, p in zip(serial, parallel):
        assert torch.equal(s["b"]["target"], p["b"]["target"])


def test_warp_off_draws_the_last_iterations_without_the_random_warp(bank):
    """warp_off: from warp_stop on the input is the target itself (still rotated, zoomed,
    flipped and colour-jittered), so the model learns detail instead of undoing a warp."""
    from facetwin.train.config import TrainConfig
    from facetwin.train.run_data import warp_stop

    assert warp_stop(TrainConfig(iterations=2000, warp_off=0.25)) == 1500
    assert warp_stop(TrainConfig(iterations=2000)) is None
    assert warp_stop(TrainConfig(minutes=5.0, warp_off=0.25)) is None  # no known total
    ds = PairDataset({"a": bank}, batch=4, seed=1, augment_cfg=AugmentConfig(), warp_stop=10)
    plain = PairDataset({"a": bank}, batch=4, seed=1, augment_cfg=AugmentConfig())

    def gap(batch):
        return (batch["warped"].float() - batch["target"].float()).abs().mean()

    before, after = ds[9]["a"], ds[10]["a"]
    assert torch.equal(before["warped"], plain[9]["a"]["warped"])  # unchanged until the stop
    assert float(gap(after)) < 0.5 < float(gap(before))


def test_epochs_visit_every_face_once():
    n, batch = 10, 4
    drawn = np.concatenate([batch_indices(3, 0, it, batch, n) for it in range(5)])
    assert sorted(drawn[:10]) == list(range(10)) and sorted(drawn[10:20]) == list(range(10))
    # Two ranks split the same stream.
    r0 = np.concatenate([batch_indices(3, 0, it, 5, n, rank=0, world=2) for it in range(1)])
    r1 = np.concatenate([batch_indices(3, 0, it, 5, n, rank=1, world=2) for it in range(1)])
    assert sorted(np.concatenate([r0, r1])) == list(range(10))


def test_losses(bank):
    ds = PairDataset({"a": bank}, batch=2, seed=0, augment_cfg=AugmentConfig())
    b = ds[0]["a"]
    target = b["target"].float() / 255
    mask, regions = b["mask"].float() / 255, b["regions"].float() / 255
    pred = (b["warped"].float() / 255).requires_grad_()
    for spec in ("l1", "ssim", "mask_l1", "0.5*l1+0.5*ssim"):
        loss_spec = parse_loss(spec, emphasis=3.0)
        assert float(compute_loss(loss_spec, target, target, mask, regions)) == pytest.approx(
            0.0, abs=1e-5
        )
        loss = compute_loss(loss_spec, pred, target, mask, regions)
        assert float(loss.detach()) > 0.0
        loss.backward()
    # Emphasis only re-weights: an error confined to the eyes and mouth counts more with it.
    err = target + 0.2 * regions
    plain = compute_loss(parse_loss("l1"), err, target, mask, regions)
    emph = compute_loss(parse_loss("l1", emphasis=3.0), err, target, mask, regions)
    assert float(emph) > 1.5 * float(plain)
    with pytest.raises(UsageError, match="unknown loss"):
        parse_loss("l3")
