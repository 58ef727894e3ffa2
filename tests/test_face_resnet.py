"""The PyTorch port of dlib's face ResNet: it must reproduce dlib's descriptors on real faces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from facetwin.errors import InputError
from facetwin.extract.detectors import create_detector
from facetwin.extract.face_resnet import DLIB_PLAN, FaceResNet, face_chip
from facetwin.extract.identity import SAME_PERSON, embedding
from facetwin.extract.landmarks import landmarks_68
from facetwin.extract.models import dlib_model
from facetwin.media.image import read_image
from facetwin.media.video import iter_frames

PHOTOS = ["fr_obama.jpg", "fr_obama2.jpg", "fr_biden.jpg", "grace_hopper_512x512.jpg"]


@pytest.fixture(scope="module")
def net() -> FaceResNet:
    return FaceResNet.from_dlib()


@pytest.fixture(scope="module")
def faces(data_dir) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (RGB image, 68 landmarks): four photos and two frames of the woman's clip."""
    det = create_detector("dlib-hog")
    out = {}
    for name in PHOTOS:
        img = read_image(data_dir / "images" / name)
        out[name] = (img, landmarks_68(img, det.detect(img)[0].box))
    clip = data_dir / "video" / "WolfgangLanger_Pexels.mp4"
    for i, frame in itertools.islice(iter_frames(clip), 0, 121, 120):
        out[f"woman{i}"] = (frame, landmarks_68(frame, det.detect(frame)[0].box))
    return out


def _chips_tensor(chips: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255


def test_weights_load(net: FaceResNet) -> None:
    plan = [(b.conv2.out_channels, b.down) for b in net.blocks]
    assert plan == list(DLIB_PLAN)
    assert torch.allclose(net.mean, torch.tensor([122.782, 117.001, 104.298]))
    assert net.fc.weight.shape == (128, 256)
    params = list(net.parameters())
    assert sum(p.numel() for p in params) == 5_614_592  # the floats stored in dlib's file
    assert all(torch.isfinite(p).all() and not p.requires_grad for p in params)
    assert not net.training


def test_truncated_file_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "cut.dat"
    bad.write_bytes(dlib_model("dlib_face_recognition_resnet_model_v1.dat").read_bytes()[:100_000])
    with pytest.raises(InputError, match="end of file"):
        FaceResNet.from_dlib(bad)


def test_matches_dlib_descriptors(net: FaceResNet, faces) -> None:
    for name, (img, lm) in faces.items():
        ours = net.embed_faces(img, [lm])[0]
        dist = float(np.linalg.norm(ours - embedding(img, lm)))
        # float32 rounding only (at most 1.3e-6 over 59 faces, benchmarks/results/identity-cpu.json);
        # a layer wrong anywhere moves it by > 0.1
        assert dist < 1e-5, (name, dist)


def test_identity_decisions(net: FaceResNet, faces) -> None:
    imgs, lms = zip(*faces.values())
    ours = net.embed_faces(list(imgs), list(lms))
    ref = np.stack([embedding(img, lm) for img, lm in faces.values()])
    pairwise = np.linalg.norm(ours[:, None] - ours[None], axis=2)
    np.testing.assert_allclose(
        pairwise, np.linalg.norm(ref[:, None] - ref[None], axis=2), atol=1e-4
    )
    e = dict(zip(faces, ours))
    assert np.linalg.norm(e["fr_obama.jpg"] - e["fr_obama2.jpg"]) < SAME_PERSON
    assert np.linalg.norm(e["fr_obama.jpg"] - e["fr_biden.jpg"]) > SAME_PERSON
    assert np.linalg.norm(e["woman0"] - e["fr_obama.jpg"]) > SAME_PERSON


def test_batched_equals_single(net: FaceResNet, faces) -> None:
    chips = np.stack([face_chip(img, lm) for img, lm in list(faces.values())[:5]])
    batched = net.embed_chips(chips, batch=4)  # a full and a partial batch
    single = np.concatenate([net.embed_chips(c[None]) for c in chips])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_gradients_flow_to_the_input(net: FaceResNet, faces) -> None:
    img, lm = faces["grace_hopper_512x512.jpg"]
    x = _chips_tensor(face_chip(img, lm)[None]).requires_grad_(True)
    net.embed(x).norm(dim=1).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad != 0).float().mean() > 0.5


def test_other_sizes_are_resized_differentiably(net: FaceResNet, faces) -> None:
    img, lm = faces["fr_biden.jpg"]
    x = _chips_tensor(face_chip(img, lm)[None])
    big = torch.nn.functional.interpolate(x, size=(300, 300), mode="bilinear").requires_grad_(True)
    emb = net(big)
    assert float((emb.detach() - net(x)).norm()) < 0.05  # same face, a little blur
    emb.norm().backward()
    assert big.grad is not None and torch.isfinite(big.grad).all() and big.grad.abs().sum() > 0
