"""``overlay``: paste the model's square as it is - the baseline the other blenders beat.

Its seams (the square's edges, a colour step all round) are what ``mask`` and ``poisson`` are
measured against.
"""

from __future__ import annotations

import numpy as np

from facetwin.convert.blend import BLENDERS, BlendParams, FacePatch


@BLENDERS.register("overlay", help="the model's square pasted as it is")
def blend_overlay(original: np.ndarray, patch: FacePatch, params: BlendParams) -> np.ndarray:
    """The swapped square over the original (``patch.face`` already is exactly that)."""
    return patch.face
