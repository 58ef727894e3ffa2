"""``sharpness``: is the pasted face as detailed as the real one? Variance of the Laplacian in
the face region, swap against original (docs/metrics.md, Sharpness)."""

from __future__ import annotations

import numpy as np

from facetwin.eval import metrics as M
from facetwin.eval.catalog import Figure, at_least
from facetwin.eval.measures import Inputs, Measure, Section, column, register


def sharpness(inputs: Inputs) -> Section:
    """Mean sharpness of both and the median of the per-face ratio (robust to the odd frame
    where the swap is a smear), over the found faces."""
    per = {
        id(p): {"sharpness_original": p.sharp_orig, "sharpness_swap": p.sharp_swap}
        for p in inputs.pairs
        if p.found and p.lab_swap is not None
    }
    if not per:
        return Section({"faces": 0})
    orig, swap = column(per, "sharpness_original"), column(per, "sharpness_swap")
    summary: dict[str, object] = {
        "faces": len(per),
        "sharpness_original": M.finite_mean(orig),
        "sharpness_swap": M.finite_mean(swap),
        "sharpness_ratio": float(np.nanmedian(swap / orig)),
    }
    return Section(summary, per)


# ranked second: the demo's table has shown it after identity since issue 11
register(Measure(
    "sharpness", "detail of the swapped face against the original's", "blending", sharpness,
    rank=20, columns=("sharpness_original", "sharpness_swap"),
    figures=(
        Figure("blending", "sharpness_ratio", "sharpness, swap / original (Laplacian variance)",
               "1 = as sharp as the original", "{:.2f}", "sharpness swap/original",
               at_least(0.6), ">= 0.6"),
    ),
))  # fmt: skip
