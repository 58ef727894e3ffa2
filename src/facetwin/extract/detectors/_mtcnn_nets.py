"""MTCNN's three networks (P-Net, R-Net, O-Net) and the loading of facenet-pytorch's weights.

Separate from the cascade (:mod:`._mtcnn_cascade`) and the plugin (:mod:`.mtcnn`) because this
is the one part tied to the weight files: every layer name here is a state-dict key of
``facenet_pytorch/data/{pnet,rnet,onet}.pt`` (they load with ``strict=True``), so it changes
only when the weights do. The leading underscore keeps :func:`facetwin.registry.import_plugins`
from taking it for a detector plugin.

The three nets share one shape: a stack of ``conv{i}`` -> ``prelu{i}`` (-> max ``pool{i}``)
stages, then a head. :class:`_ConvStack` builds and runs that stack under the weight files'
names, so each net below only states its sizes and its head.

The original nets worked on transposed images; with these weights the input is an ordinary
N,3,H,W RGB tensor and only the flatten before the dense layers runs in (W, H, C) order (see
:mod:`.mtcnn` for how that was checked).
"""

from __future__ import annotations

from functools import cache

import torch
from torch import nn
from torch.nn import functional as F

from facetwin.extract.models import model_file

#: One conv stage: (output channels, kernel size, max pool (kernel, stride) or None).
Stage = tuple[int, int, tuple[int, int] | None]


def _flatten_wh(x: torch.Tensor) -> torch.Tensor:
    """Flatten N,C,H,W in (W, H, C) order: the order the dense weights were ported with."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class _ConvStack(nn.Module):
    """``conv{i}`` -> ``prelu{i}`` (-> ``pool{i}``) for each stage, named as the weights are."""

    def __init__(self, stages: tuple[Stage, ...]) -> None:
        super().__init__()
        self._stages: list[tuple[nn.Module, nn.Module, nn.Module | None]] = []
        in_ch = 3
        for i, (out_ch, kernel, pool) in enumerate(stages, start=1):
            conv, prelu = nn.Conv2d(in_ch, out_ch, kernel), nn.PReLU(out_ch)
            self.add_module(f"conv{i}", conv)
            self.add_module(f"prelu{i}", prelu)
            mp = None if pool is None else nn.MaxPool2d(pool[0], pool[1], ceil_mode=True)
            if mp is not None:
                self.add_module(f"pool{i}", mp)
            self._stages.append((conv, prelu, mp))
            in_ch = out_ch

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Run every conv stage in order."""
        for conv, prelu, pool in self._stages:
            x = prelu(conv(x))
            if pool is not None:
                x = pool(x)
        return x


class PNet(_ConvStack):
    """Proposal net: fully convolutional, one 12x12 window per output cell (stride 2)."""

    def __init__(self) -> None:
        super().__init__(((10, 3, (2, 2)), (16, 3, None), (32, 3, None)))
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (face probability N,H',W'; box regression N,4,H',W')."""
        x = self.features(x)
        return F.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(_ConvStack):
    """Refine net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__(((28, 3, (3, 2)), (48, 3, (3, 2)), (64, 2, None)))
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (face probability N; box regression N,4)."""
        x = self.prelu4(self.dense4(_flatten_wh(self.features(x))))
        return F.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(_ConvStack):
    """Output net on 48x48 crops: final score, box regression and five keypoints."""

    def __init__(self) -> None:
        super().__init__(((32, 3, (3, 2)), (64, 3, (3, 2)), (64, 3, (2, 2)), (128, 2, None)))
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (face probability N; box regression N,4; keypoints N,10 as 5 x then 5 y)."""
        x = self.prelu5(self.dense5(_flatten_wh(self.features(x))))
        return F.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def _load(net: nn.Module, name: str) -> nn.Module:
    """Load ``name``.pt from the facenet-pytorch wheel (tensors only, strict key match)."""
    path = model_file("facenet_pytorch", "data", f"{name}.pt")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()


@cache
def frozen_onet(device: str) -> ONet:
    """An O-Net of its own whose weights take no gradient, for training's perceptual loss
    (``train/perceptual.py``): the detector's nets (:func:`load_nets`) stay untouched."""
    net = _load(ONet(), "onet").to(device)
    net.requires_grad_(False)
    return net  # type: ignore[return-value]


@cache
def load_nets(device: str) -> tuple[nn.Module, nn.Module, nn.Module]:
    """The three nets on ``device``, loaded once per process and device (they are read-only)."""
    return (
        _load(PNet(), "pnet").to(device),
        _load(RNet(), "rnet").to(device),
        _load(ONet(), "onet").to(device),
    )
