"""``seams``: is the pasted face's edge visible, and did it get the original's colour? The colour
step across the mask border against the original's own, and the face's colour shift (CIELAB;
docs/metrics.md, Blending)."""

from __future__ import annotations

import numpy as np

from facetwin.eval import metrics as M
from facetwin.eval.catalog import Figure
from facetwin.eval.faces import FacePair
from facetwin.eval.measures import Chart, Inputs, Measure, Section, column, register


def _colours(p: FacePair) -> dict[str, float]:
    d = p.lab_swap - p.lab_orig  # type: ignore[operator]
    return {
        "border_step_original": p.step_orig,
        "border_step_swap": p.step_swap,
        "dL": d[0],
        "da": d[1],
        "db": d[2],
        "color_shift_dE": float(np.linalg.norm(d)),
    }


def seams(inputs: Inputs) -> Section:
    """Border step and colour shift, averaged over the found faces."""
    per = {id(p): _colours(p) for p in inputs.pairs if p.found and p.lab_swap is not None}
    if not per:
        return Section({"faces": 0})
    so = M.finite_mean(column(per, "border_step_original"))
    ss = M.finite_mean(column(per, "border_step_swap"))
    summary: dict[str, object] = {
        "faces": len(per),
        "border_step_swap": ss,
        "border_step_original": so,
        "border_step_excess": ss - so,
        "border_step_ratio": M.ratio(ss, so),
    }
    for ch in ("L", "a", "b"):
        summary[f"color_shift_{ch}"] = M.finite_mean(column(per, f"d{ch}"))
    summary["color_shift_dE"] = M.finite_mean(column(per, "color_shift_dE"))
    for v in per.values():
        for ch in ("dL", "da", "db"):
            del v[ch]  # in the summary only, not a per-frame column
    return Section(summary, per)


register(Measure(
    "seams", "colour step at the mask border and colour shift", "blending", seams, rank=70,
    columns=("border_step_original", "border_step_swap", "color_shift_dE"),
    figures=(
        Figure("blending", "border_step_swap", "colour step at mask border, swap (dE)"),
        Figure("blending", "border_step_original", "colour step at mask border, original (dE)"),
        Figure("blending", "border_step_excess", "border step excess (swap - original)",
               "0 = seamless"),
        Figure("blending", "color_shift_dE", "face colour shift vs original (dE)"),
    ),
    charts=(
        Chart("Colour step at the mask border", "delta E",
              {"original": "border_step_original", "swap": "border_step_swap"}),
    ),
))  # fmt: skip
