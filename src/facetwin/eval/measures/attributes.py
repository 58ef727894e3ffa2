"""``attributes``: did the swap keep the original's head pose and expression? Landmark pose
(yaw, pitch, roll) and eye/mouth shape, swap against original (docs/metrics.md, Attributes)."""

from __future__ import annotations

import numpy as np

from facetwin.eval import metrics as M
from facetwin.eval.catalog import Figure, at_most
from facetwin.eval.faces import FacePair
from facetwin.eval.measures import Chart, Inputs, Measure, Section, column, register


def _errors(p: FacePair) -> dict[str, float]:
    """One pair's pose errors per axis and in all, and its expression errors."""
    pe = M.pose_error(p.pose_orig, p.pose_swap)  # type: ignore[arg-type]
    ex = M.expression_error(p.lm_orig, p.lm_swap)  # type: ignore[arg-type]
    return {
        "yaw_error": pe[0],
        "pitch_error": pe[1],
        "roll_error": pe[2],
        "pose_error": pe[3],
        "expression_error": ex["all"],
        "eyes": ex["eyes"],
        "mouth": ex["mouth"],
    }


def attributes(inputs: Inputs) -> Section:
    """Pose and expression errors of every found face; the pose also without its constant part
    (a landmark pose reads the other person's proportions as a tilt: see centred_pose_error)."""
    found = [
        p for p in inputs.pairs if p.found and p.lm_swap is not None and p.pose_swap is not None
    ]
    per = {id(p): _errors(p) for p in found}
    signed = [M.wrap_degrees(np.subtract(p.pose_swap, p.pose_orig)) for p in found]  # type: ignore[arg-type]
    offset, centred = M.centred_pose_error(np.array(signed, np.float64).reshape(-1, 3))
    for v, c in zip(per.values(), centred):
        v["pose_error_centred"] = float(c)
    summary: dict[str, object] = {
        "faces": len(per),
        "pose_error_mean": M.finite_mean(column(per, "pose_error")),
        "pose_error_centred_mean": M.finite_mean(centred),
        "pose_offset": [round(float(v), 3) if np.isfinite(v) else None for v in offset],
    }
    for axis in ("yaw", "pitch", "roll"):
        summary[f"{axis}_error_mean"] = M.finite_mean(column(per, f"{axis}_error"))
    summary["expression_error_mean"] = M.finite_mean(column(per, "expression_error"))
    for part in ("eyes", "mouth"):
        summary[f"expression_error_{part}"] = M.finite_mean(column(per, part))
        for v in per.values():
            del v[part]  # in the summary only, not a per-frame column
    return Section(summary, per)


register(Measure(
    "attributes", "head pose and expression kept (landmarks)", "attributes", attributes,
    rank=30,
    columns=("pose_error", "pose_error_centred", "yaw_error", "pitch_error", "roll_error",
             "expression_error"),
    figures=(
        Figure("attributes", "pose_error_mean", "pose error (deg, L2 of yaw/pitch/roll)",
               "0 = pose kept", "{:.1f}", "pose error (deg)", at_most(5), "<= 5"),
        # roll needs no depth, so it is the part of the pose estimate a face's shape cannot fake
        Figure("attributes", "roll_error_mean", "roll error (deg)", "needs no depth estimate",
               "{:.1f}", "  of it roll (deg)", None, "(docs/metrics.md)"),
        Figure("attributes", "pose_error_centred_mean",
               "pose error, constant offset removed (deg)", "follows the head frame by frame",
               "{:.1f}", "  offset removed (deg)", None, "(docs/metrics.md)"),
        Figure("attributes", "expression_error_mean", "expression error (IOD)",
               "eyes + mouth, 0 = kept", "{:.3f}", "expression error", None,
               "(lower is better)"),
    ),
    charts=(
        Chart("Pose error per frame", "degrees", {"pose error": "pose_error"}),
        Chart("Expression error per frame", "IOD", {"expression error": "expression_error"}),
        Chart("Pose error (all faces)", "degrees", {"pose error": "pose_error"},
              kind="histogram"),
        Chart("Expression error (all faces)", "IOD", {"expression error": "expression_error"},
              kind="histogram"),
    ),
))  # fmt: skip
