"""``none``: keep the model's colours (useful to judge the model itself, or with poisson)."""

from __future__ import annotations

import numpy as np

from facetwin.convert.color import COLOR_MATCHERS


@COLOR_MATCHERS.register("none", help="the colours the model drew")
def match_none(face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The face unchanged."""
    return face
