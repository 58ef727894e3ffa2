"""``jitter``: does the swapped face shake more than the original? Second temporal difference
of the landmarks, in image space and of the face's shape alone, input against output (video
only; docs/metrics.md, Landmark jitter)."""

from __future__ import annotations

import numpy as np

from facetwin.eval import metrics as M
from facetwin.eval.catalog import Figure, at_most
from facetwin.eval.faces import FacePair
from facetwin.eval.measures import Chart, Inputs, Measure, Section, column, register, tracks


def _track_jitter(found: list[FacePair]) -> dict[str, np.ndarray]:
    """Per-frame jitter of one track's found faces, in and out, whole and shape only."""
    f = np.array([p.frame for p in found])
    iod = np.array([p.iod for p in found])
    lm = {"in": np.stack([p.lm_orig for p in found]),
          "out": np.stack([p.lm_swap for p in found])}  # type: ignore[misc]  # fmt: skip
    mf_iod = np.full(len(found), M.mean_face_iod())
    out = {}
    for side, x in lm.items():
        out[f"jitter_{side}"] = M.landmark_jitter(f, x, iod)
        shape = np.stack([M.to_mean_face(v) for v in x])
        out[f"shape_jitter_{side}"] = M.landmark_jitter(f, shape, mf_iod)
    return out


def jitter(inputs: Inputs) -> Section:
    """Jitter per track, pooled over tracks (RMS); input and output on the same frames."""
    by_track = tracks(inputs.pairs)
    per: dict[int, dict[str, float]] = {}
    for rs in by_track.values():
        found = [p for p in rs if p.found and p.lm_swap is not None]
        if found:
            cols = _track_jitter(found)
            for i, p in enumerate(found):
                per[id(p)] = {k: float(v[i]) for k, v in cols.items()}
    out: dict[str, object] = {"tracks": len(by_track)}
    for name, prefix in (("jitter", "landmark_jitter"), ("shape_jitter", "shape_jitter")):
        a, b = M.rms(column(per, f"{name}_in")), M.rms(column(per, f"{name}_out"))
        out.update({f"{prefix}_in": a, f"{prefix}_out": b, f"{prefix}_ratio": M.ratio(b, a)})
        out[f"{name}_frames"] = int(np.isfinite(column(per, f"{name}_in")).sum())
    return Section(out, per)


register(Measure(
    "jitter", "landmark shake added by the swap (video)", "temporal", jitter, rank=50,
    needs=frozenset({"video"}),
    columns=("jitter_in", "jitter_out", "shape_jitter_in", "shape_jitter_out"),
    figures=(
        Figure("temporal", "landmark_jitter_in", "landmark jitter, original (IOD)"),
        Figure("temporal", "landmark_jitter_out", "landmark jitter, swap (IOD)"),
        Figure("temporal", "landmark_jitter_ratio", "landmark jitter ratio (out / in)",
               "1 = no added shake", "{:.2f}", "landmark jitter ratio", at_most(1.1), "<= 1.1"),
        Figure("temporal", "shape_jitter_ratio", "shape jitter ratio (out / in)",
               "non-rigid shake only"),
    ),
    charts=(
        Chart("Landmark jitter per frame", "IOD / frame^2",
              {"original": "jitter_in", "swap": "jitter_out"}),
        Chart("Landmark jitter (all faces)", "IOD / frame^2",
              {"original": "jitter_in", "swap": "jitter_out"}, kind="histogram"),
    ),
))  # fmt: skip
