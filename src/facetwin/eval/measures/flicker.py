"""``flicker``: does the face's brightness change more from frame to frame in the swap? Mean
luma of the original face's region, frame to frame, input against output (video only;
docs/metrics.md, Flicker)."""

from __future__ import annotations

import numpy as np

from facetwin.eval import metrics as M
from facetwin.eval.catalog import Figure, at_most
from facetwin.eval.measures import Chart, Inputs, Measure, Section, column, register, tracks


def flicker(inputs: Inputs) -> Section:
    """Flicker per track, pooled over tracks (mean); every original face counts, found or not
    (the region is the original's, the same pixels in both videos)."""
    by_track = tracks(inputs.pairs)
    per: dict[int, dict[str, float]] = {}
    for rs in by_track.values():
        frames = np.array([p.frame for p in rs])
        fl_in = M.intensity_flicker(frames, np.array([p.luma_orig for p in rs]))
        fl_out = M.intensity_flicker(frames, np.array([p.luma_swap for p in rs]))
        for p, a, b in zip(rs, fl_in, fl_out, strict=True):
            per[id(p)] = {"flicker_in": a, "flicker_out": b}
    a, b = M.finite_mean(column(per, "flicker_in")), M.finite_mean(column(per, "flicker_out"))
    return Section(
        {
            "tracks": len(by_track),
            "flicker_in": a,
            "flicker_out": b,
            "flicker_ratio": M.ratio(b, a),
            "flicker_frames": int(np.isfinite(column(per, "flicker_in")).sum()),
        },
        per,
    )


register(Measure(
    "flicker", "face brightness changes added by the swap (video)", "temporal", flicker,
    rank=60, needs=frozenset({"video"}), columns=("flicker_in", "flicker_out"),
    figures=(
        Figure("temporal", "flicker_in", "flicker, original (luma levels)"),
        Figure("temporal", "flicker_out", "flicker, swap (luma levels)"),
        Figure("temporal", "flicker_ratio", "flicker ratio (out / in)", "1 = no added flicker",
               "{:.2f}", "flicker ratio", at_most(1.1), "<= 1.1"),
    ),
    charts=(
        Chart("Face flicker per frame", "|d mean luma|",
              {"original": "flicker_in", "swap": "flicker_out"}),
    ),
))  # fmt: skip
