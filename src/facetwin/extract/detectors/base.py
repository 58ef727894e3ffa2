"""The detector contract: an RGB image in, face boxes out.

Boxes are returned in *dlib's box convention* (a roughly square box from the eyebrows to the chin,
the box the 68-point shape predictor was trained on), whatever the detector's native convention, so
that every detector can feed the same landmark model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One face found in an image.

    box: (x0, y0, x1, y1) in image pixels, dlib convention.
    score: detector confidence (its own scale; higher is surer).
    points5: optional (5, 2) keypoints (eyes, nose, mouth corners) when the detector gives them.
    """

    box: tuple[float, float, float, float]
    score: float
    points5: np.ndarray | None = field(default=None, compare=False)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


class Detector(Protocol):
    """What every detector plugin provides."""

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Find faces in an RGB uint8 image of shape (H, W, 3)."""
        ...
