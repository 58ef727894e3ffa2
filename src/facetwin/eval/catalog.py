"""The catalogue of eval's figures: where each lives in metrics.json, what it is called, how to
read it, how to print it, and the goal it is held to (issue 11's, for the demo's table).

The report's summary table and the demo's held-out table are both built from :data:`FIGURES`,
so adding a figure is computing it (``eval/summary.py``) and adding one entry here.
docs/metrics.md defines each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facetwin.registry import Registry


@dataclass(frozen=True)
class Figure:
    """One number of metrics.json (``metrics[section][key]``) as people are shown it."""

    section: str  # identity | attributes | temporal | blending
    key: str
    label: str  # in the report
    reading: str = ""  # how to read it, in the report
    fmt: str = "{:.4g}"
    demo_label: str = ""  # in the demo's held-out table when set (its headline figures)
    goal: Callable[[float], bool] | None = None
    goal_text: str = ""

    def value(self, metrics: dict[str, Any]) -> Any:
        return (metrics.get(self.section) or {}).get(self.key)

    def meets(self, value: float) -> bool:
        return self.goal is None or bool(self.goal(value))


FIGURES: Registry[Figure] = Registry("figure")
#: report order (a registry lists names sorted; the tables keep this order)
ORDER: list[str] = []


def add(figure: Figure) -> Figure:
    """Register ``figure`` (its key must be new) at the end of the tables."""
    FIGURES.register(figure.key, help=figure.label)(figure)
    ORDER.append(figure.key)
    return figure


def ordered() -> list[Figure]:
    return [FIGURES.get(k) for k in ORDER]


def headline() -> list[Figure]:
    """The demo's figures, each with issue 11's goal where it has one."""
    return [f for f in ordered() if f.demo_label]


def _at_least(x: float) -> Callable[[float], bool]:
    return lambda v: v >= x


def _at_most(x: float) -> Callable[[float], bool]:
    return lambda v: v <= x


for _figure in (
    Figure("identity", "id_retrieval", "ID retrieval (nearer B than A)",
           "share of swapped faces; 1 = all B", "{:.0%}", "ID retrieval",
           _at_least(0.95), ">= 95%"),
    Figure("identity", "nearer_b_by", "swap nearer B than A by (mean distance)",
           ">= 0.10 is a clear change of identity", "{:+.3f}", "nearer the target by",
           _at_least(0.10), ">= 0.10"),
    Figure("identity", "swap_to_b_mean", "distance swap - B",
           "dlib embedding; < 0.6 ~ same person"),
    Figure("identity", "swap_to_a_mean", "distance swap - A", "higher = less of A left"),
    Figure("identity", "swap_to_original_mean", "distance swap - its original face",
           "0 = unchanged"),
    Figure("identity", "original_id_retrieval_a", "originals nearer A than B",
           "sanity check of A/B, ~1"),
    Figure("blending", "sharpness_ratio", "sharpness, swap / original (Laplacian variance)",
           "1 = as sharp as the original", "{:.2f}", "sharpness swap/original",
           _at_least(0.6), ">= 0.6"),
    Figure("attributes", "pose_error_mean", "pose error (deg, L2 of yaw/pitch/roll)",
           "0 = pose kept", "{:.1f}", "pose error (deg)", _at_most(5), "<= 5"),
    # roll needs no depth, so it is the part of the pose estimate a face's shape cannot fake
    Figure("attributes", "roll_error_mean", "roll error (deg)", "needs no depth estimate",
           "{:.1f}", "  of it roll (deg)", None, "(docs/metrics.md)"),
    Figure("attributes", "pose_error_centred_mean", "pose error, constant offset removed (deg)",
           "follows the head frame by frame", "{:.1f}", "  offset removed (deg)", None,
           "(docs/metrics.md)"),
    Figure("attributes", "expression_error_mean", "expression error (IOD)",
           "eyes + mouth, 0 = kept", "{:.3f}", "expression error", None, "(lower is better)"),
    Figure("temporal", "landmark_jitter_in", "landmark jitter, original (IOD)"),
    Figure("temporal", "landmark_jitter_out", "landmark jitter, swap (IOD)"),
    Figure("temporal", "landmark_jitter_ratio", "landmark jitter ratio (out / in)",
           "1 = no added shake", "{:.2f}", "landmark jitter ratio", _at_most(1.1), "<= 1.1"),
    Figure("temporal", "shape_jitter_ratio", "shape jitter ratio (out / in)",
           "non-rigid shake only"),
    Figure("temporal", "flicker_in", "flicker, original (luma levels)"),
    Figure("temporal", "flicker_out", "flicker, swap (luma levels)"),
    Figure("temporal", "flicker_ratio", "flicker ratio (out / in)", "1 = no added flicker",
           "{:.2f}", "flicker ratio", _at_most(1.1), "<= 1.1"),
    Figure("blending", "border_step_swap", "colour step at mask border, swap (dE)"),
    Figure("blending", "border_step_original", "colour step at mask border, original (dE)"),
    Figure("blending", "border_step_excess", "border step excess (swap - original)",
           "0 = seamless"),
    Figure("blending", "color_shift_dE", "face colour shift vs original (dE)"),
):  # fmt: skip
    add(_figure)
