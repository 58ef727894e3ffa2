"""The building blocks of dlib's face-recognition ResNet in PyTorch: affine, residual block.

Separate from :mod:`facetwin.extract.face_resnet` (the whole network and its embedding API) so
that the one subtle part, dlib's ``add_prev`` on tensors of different shapes, can be read on its
own, and so that :mod:`facetwin.extract.dlib_weights` can name these layers without importing
the network it loads.

``ares`` is ``relu(x + affine(con3x3(relu(affine(con3x3(x))))))``; ``ares_down`` uses stride 2
(and no padding) in the first convolution and a 2x2/2 average pool on the skip path. dlib's
``add_prev`` adds tensors of different shapes by treating missing entries as zeros: the skip has
fewer channels (zero-filled) and, in the last level, *more* rows and columns (4x4 against the
block's 3x3), so the block output is zero-filled at the bottom and right. We reproduce that
exactly; it is why the final feature map is 4x4, not 3x3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (output channels, downsamples) of each residual block, from the input upwards; derived from the
# weight file at load time and checked against this.
DLIB_PLAN: tuple[tuple[int, bool], ...] = (
    ((32, False),) * 3
    + ((64, True),)
    + ((64, False),) * 3
    + ((128, True),)
    + ((128, False),) * 2
    + ((256, True),)
    + ((256, False),) * 2
    + ((256, True),)
)


class Affine(nn.Module):
    """dlib's ``affine`` layer: a frozen batch norm, ``x * gamma + beta`` per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta[:, None, None], x, self.gamma[:, None, None])


def add_zero_filled(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` as dlib's add_prev does it: the larger shape, missing entries counting as 0.

    Shapes differ on the skip of a downsampling block (fewer channels; and in the last level
    one more row and column, because the skip pools 8->4 while the 3x3/2 conv gives 3).
    """
    if a.shape == b.shape:
        return a + b
    shape = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:])]

    def grow(t: torch.Tensor) -> torch.Tensor:
        c, h, w = t.shape[1:]
        return F.pad(t, (0, shape[2] - w, 0, shape[1] - h, 0, shape[0] - c))

    return grow(a) + grow(b)


class ResBlock(nn.Module):
    """dlib's ``ares`` / ``ares_down``: two 3x3 convs with affines, a residual add and a relu."""

    def __init__(self, in_ch: int, out_ch: int, down: bool) -> None:
        super().__init__()
        stride, pad = (2, 0) if down else (1, 1)  # dlib pads 3x3 convs only when stride is 1
        self.down = down
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, pad)
        self.aff1 = Affine(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.aff2 = Affine(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_zero_filled(skip, y))
