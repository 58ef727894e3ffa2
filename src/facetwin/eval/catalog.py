"""The catalogue of eval's figures: where each lives in metrics.json, what it is called, how to
read it, how to print it, and the goal it is held to (issue 11's, for the demo's table).

The report's summary table and the demo's held-out table are both built from :data:`FIGURES`.
Nothing is listed here by hand: each measure (``eval/measures/``, one file each) declares its
figures beside the code that computes them, and registering the measure adds them here, at its
rank - so a new metric is one new file, and its figures reach both tables by themselves.
docs/metrics.md defines each.
"""

from __future__ import annotations

import math
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
#: the order figures were added in (a registry lists names sorted)
ORDER: list[str] = []
#: figure key -> its measure's rank: the tables sort by it, so the order of the tables does not
#: depend on the order in which the measure files happen to be imported
_RANK: dict[str, float] = {}


def add(figure: Figure, rank: float = math.inf) -> Figure:
    """Register ``figure`` (its key must be new) in the tables at ``rank`` (after every figure of
    a lower rank; the end of the tables by default), after the figures added before it."""
    FIGURES.register(figure.key, help=figure.label)(figure)
    ORDER.append(figure.key)
    _RANK[figure.key] = rank
    return figure


def ordered() -> list[Figure]:
    """Every figure in table order: by rank, then in the order added."""
    keys = sorted(ORDER, key=lambda k: _RANK.get(k, math.inf))  # stable: ties keep ORDER
    return [FIGURES.get(k) for k in keys]


def headline() -> list[Figure]:
    """The demo's figures, each with issue 11's goal where it has one."""
    return [f for f in ordered() if f.demo_label]


def at_least(x: float) -> Callable[[float], bool]:
    """A goal: the figure is ``x`` or more."""
    return lambda v: v >= x


def at_most(x: float) -> Callable[[float], bool]:
    """A goal: the figure is ``x`` or less."""
    return lambda v: v <= x
