"""Eval's measures: one file per metric group, each registering one :class:`Measure`.

A measure turns the face pairs of a run (``eval/faces.py``) into its section of metrics.json
and its per-frame columns, and declares its figures (the report's and the demo's tables), its
charts and what it needs. Adding a metric is adding one file - here (every module beside this
one is imported by :func:`import_plugins`) or, from outside facetwin, a module named in
``FACETWIN_PLUGINS`` - that calls :func:`register`; ``facetwin eval --metrics`` then offers it,
a run computes it, and the report shows it. docs/metrics.md, "Adding a metric".
"""

from __future__ import annotations

from collections.abc import Sequence

from facetwin.eval import catalog
from facetwin.eval.measures.base import (
    NEEDS,
    Chart,
    Inputs,
    Measure,
    Section,
    column,
    tracks,
)
from facetwin.registry import Registry, import_plugins

MEASURES: Registry[Measure] = Registry("metric")

#: metrics.json's sections, in its order; a plugin's own section follows them
SECTIONS = ("identity", "attributes", "temporal", "blending")


def register(measure: Measure) -> Measure:
    """Register ``measure`` under its name and its figures in the catalogue at its rank."""
    MEASURES.register(measure.name, help=measure.help)(measure)
    for figure in measure.figures:
        catalog.add(figure, rank=measure.rank)
    return measure


def ordered(names: Sequence[str] | None = None) -> list[Measure]:
    """The measures ``names`` (every registered one when None) in report order: by rank, then
    name. UsageError naming the choices for an unknown name."""
    chosen = MEASURES.names() if names is None else list(dict.fromkeys(names))
    return sorted((MEASURES.get(n) for n in chosen), key=lambda m: (m.rank, m.name))


def sections() -> list[str]:
    """Every section of metrics.json: the standard four, then plugins' own. All are always
    present (``null`` when no measure of it ran), so readers see one layout."""
    extra = [m.section for m in ordered() if m.section not in SECTIONS]
    return [*SECTIONS, *dict.fromkeys(extra)]


def needs(measures: Sequence[Measure]) -> frozenset[str]:
    return frozenset().union(*(m.needs for m in measures))


def columns(measures: Sequence[Measure]) -> list[str]:
    """The per-frame columns of ``measures``, in report order, each once."""
    return list(dict.fromkeys(c for m in measures for c in m.columns))


def run(
    measures: Sequence[Measure], inputs: Inputs
) -> tuple[dict[str, dict[str, object] | None], dict[int, dict[str, float]]]:
    """Every section of metrics.json (``null`` where none of ``measures`` applied) and the
    per-face columns, merged over ``measures``."""
    out: dict[str, dict[str, object] | None] = dict.fromkeys(sections())
    per_face: dict[int, dict[str, float]] = {}
    for m in measures:
        if not m.applies(inputs.video):
            continue
        got = m.compute(inputs)
        out[m.section] = {**(out.get(m.section) or {}), **got.summary}
        for key, values in got.per_face.items():
            per_face.setdefault(key, {}).update(values)
    return out, per_face


# Every module beside this one is a measure that registers itself: adding one is adding a file.
import_plugins(__name__)

__all__ = [
    "MEASURES",
    "NEEDS",
    "SECTIONS",
    "Chart",
    "Inputs",
    "Measure",
    "Section",
    "column",
    "columns",
    "needs",
    "ordered",
    "register",
    "run",
    "sections",
    "tracks",
]
