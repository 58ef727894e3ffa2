"""A perceptual loss term from a face network that is not eval's judge: MTCNN's O-Net.

L1 and SSIM are smallest for the average of the faces a warped input could come from, and an
average is blurred: after 2,000 CPU iterations the demo's faces kept ~43 % of the real faces'
fine detail (Laplacian variance). A loss on the *amount* of detail made the model draw
patterns (docs/training.md). This term compares what the detail *is*: the activations of the
first two convolution stages of O-Net, the last network of MTCNN's cascade, trained to tell faces
from non-faces and to place five facial keypoints - edges and local structure of eyes, brows,
nose and mouth as a face network sees them. Its weights are the detector's own (facenet-pytorch's
``onet.pt``, already installed); eval judges identity with dlib's ResNet, which no loss uses.

Each stage's L1 is divided by the mean magnitude of the target's activations there, so both
stages count alike and the term's scale does not depend on the network's units. The images are
averaged 2x2 first when they are 96 px or larger: O-Net sees 48 px faces, its stages are cheap at
64 px, and at 128 px each stage would work on four times the pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facetwin.extract.detectors._mtcnn_nets import ONet, frozen_onet

#: O-Net's stages whose activations are compared (conv -> PReLU, before the pooling).
STAGES = 2
#: At or above this side the images are averaged 2x2 first.
HALVE_FROM = 96


def onet_features(net: ONet, x: torch.Tensor) -> list[torch.Tensor]:
    """The activations of O-Net's first :data:`STAGES` stages for RGB images in [0, 1]."""
    x = (x * 255.0 - 127.5) * 0.0078125  # MTCNN's input scaling
    out = []
    for conv, prelu, pool in net._stages[:STAGES]:
        x = prelu(conv(x))
        out.append(x)
        if pool is not None:
            x = pool(x)
    return out


def onet_stages(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per compared stage: ``pred``'s activations, ``target``'s (no gradient) and the per-pixel
    ``weight`` (N, 1, H, W) brought to their size - what the ``onet`` loss term
    (train/losses.py) compares."""
    net = frozen_onet(str(pred.device))
    if pred.shape[-1] >= HALVE_FROM:
        pred, target, weight = (F.avg_pool2d(t, 2) for t in (pred, target, weight))
    with torch.no_grad():
        wanted = onet_features(net, target)
    return [
        (got, want, F.interpolate(weight, size=got.shape[-2:], mode="area"))
        for got, want in zip(onet_features(net, pred), wanted)
    ]


__all__ = ["STAGES", "onet_features", "onet_stages"]
