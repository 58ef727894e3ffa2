"""The ``onet`` loss term (train/perceptual.py): MTCNN O-Net's early activations on real faces."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from conftest import DATA
from facetwin.extract.detectors._mtcnn_nets import frozen_onet, load_nets
from facetwin.media.image import read_image
from facetwin.train.losses import compute_loss, l1, onet, parse_loss


def onet_distance(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return onet(pred, target, weight, weight)  # the term ignores the face mask


def face(name: str = "grace_hopper_512x512.jpg", side: int = 128) -> torch.Tensor:
    """(1, 3, side, side) float in [0, 1]: the face region of a real photo."""
    img = read_image(DATA / "images" / name)
    h, w = img.shape[:2]
    crop = img[h // 8 : h - h // 8, w // 8 : w - w // 8]
    crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(crop.transpose(2, 0, 1).copy()).float()[None] / 255.0


def as_image(x: torch.Tensor) -> np.ndarray:
    return (x[0].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)


def test_it_tells_a_blurred_face_from_a_brighter_one_that_l1_rates_alike() -> None:
    """Blur (what L1 and SSIM leave) against a uniform brightening with the same L1 error:
    the O-Net term rates the blur several times as far, which is what it is for."""
    x = face()
    ones = torch.ones_like(x[:, :1])
    blurred = torch.from_numpy(cv2.GaussianBlur(as_image(x), (0, 0), 2.0).transpose(2, 0, 1))
    blurred = blurred.float()[None] / 255.0
    e = float(l1(blurred, x, ones, ones))
    brighter = (x + e).clamp(0, 1)
    assert abs(float(l1(brighter, x, ones, ones)) - e) < 0.3 * e
    d_blur, d_bright = onet_distance(blurred, x, ones), onet_distance(brighter, x, ones)
    assert float(onet_distance(x, x, ones)) == 0.0
    assert float(d_blur) > 3 * float(d_bright), (float(d_blur), float(d_bright))


def test_gradients_reach_the_prediction_and_not_the_networks() -> None:
    x, y = face(side=128), face("fr_obama.jpg", side=128)
    pred = y.clone().requires_grad_(True)
    ones = torch.ones_like(x[:, :1])
    loss = compute_loss(parse_loss("l1+0.3*onet"), pred, x, ones, ones)
    loss.backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in frozen_onet("cpu").parameters())
    # the detector's own O-Net is another object and still a plain network
    detector_onet = load_nets("cpu")[2]
    assert detector_onet is not frozen_onet("cpu")
    assert all(p.grad is None for p in detector_onet.parameters())


def test_weights_and_scale() -> None:
    """Pixels of weight 0 do not count, and the 64 px and 128 px versions of one pair agree
    (the larger is halved first) - the term's scale does not change with the model's size."""
    x, y = face(side=128), face("fr_obama.jpg", side=128)
    ones = torch.ones_like(x[:, :1])
    left = ones.clone()
    left[..., 64:] = 0
    mixed = torch.cat([x[..., :64], y[..., 64:]], dim=-1)  # x on the left half, y on the right
    assert float(onet_distance(mixed, x, left)) < 0.2 * float(onet_distance(y, x, left))
    small = torch.nn.functional.avg_pool2d
    full, half = onet_distance(y, x, ones), onet_distance(small(y, 2), small(x, 2), small(ones, 2))
    assert abs(float(full) - float(half)) < 1e-5
