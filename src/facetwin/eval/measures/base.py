"""The contract of a measure: what it is given, what it returns, and what it declares about
itself so that nothing else has to be edited when one is added (the CLI's ``--metrics``, the
report's table and charts, the demo's table and metrics.json's per-frame rows all read it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from facetwin.eval.catalog import Figure
from facetwin.eval.faces import FacePair
from facetwin.eval.references import IdentityRefs

#: What a measure may need beyond a face pair's landmarks, pose, regions and colours (which
#: every pair has): ``video`` - consecutive frames of a tracked face (it is skipped on images,
#: and its section is ``null`` there); ``embeddings`` - identity embeddings of the faces, the
#: slow part (~80 ms a face), computed only when a measure run needs them.
NEEDS = frozenset({"video", "embeddings"})


@dataclass(frozen=True)
class Inputs:
    """What every measure is given: the face pairs of the whole run (``eval/faces.py``), the
    identity references A and B, and whether the pairs are frames of one video."""

    pairs: list[FacePair]
    refs: IdentityRefs
    video: bool


@dataclass
class Section:
    """A measure's result: its figures for its section of metrics.json, and its per-face values
    (``id(pair)`` -> column -> value) for the per-frame rows and the report's charts."""

    summary: dict[str, object]
    per_face: dict[int, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Chart:
    """One chart of report.html, drawn from per-frame columns: ``curve`` over the frames of the
    main face, or ``histogram`` over all faces; skipped when no column has a value."""

    title: str
    unit: str  # the value axis: y of a curve, x of a histogram
    series: dict[str, str]  # legend label -> per-frame column
    kind: str = "curve"  # curve | histogram
    sparse: bool = False  # a curve joins its points across frames without a value


@dataclass(frozen=True)
class Measure:
    """One metric group: how it is computed and everything the tools show of it.

    ``section`` is its place in metrics.json (measures may share one; their figures are
    merged), ``rank`` its place in the report's and the demo's tables, ``columns`` the
    per-frame columns it fills (every row gets each, ``null`` where it has no value).
    """

    name: str  # the --metrics choice
    help: str  # one line, in facetwin eval --help
    section: str
    compute: Callable[[Inputs], Section]
    rank: float = 100.0
    needs: frozenset[str] = frozenset()
    columns: tuple[str, ...] = ()
    figures: tuple[Figure, ...] = ()
    charts: tuple[Chart, ...] = ()

    def __post_init__(self) -> None:
        if not self.needs <= NEEDS:
            raise ValueError(f"metric {self.name!r}: unknown needs {sorted(self.needs - NEEDS)}")
        wrong = [f.key for f in self.figures if f.section != self.section]
        if wrong:
            raise ValueError(f"metric {self.name!r}: figures {wrong} not in {self.section!r}")

    def applies(self, video: bool) -> bool:
        """False for a video-only measure on images."""
        return video or "video" not in self.needs


def column(per_face: dict[int, dict[str, float]], key: str) -> np.ndarray:
    """One per-face value of every face that has a per-face entry (NaN where it lacks ``key``)."""
    return np.array([v.get(key, np.nan) for v in per_face.values()], np.float64)


def tracks(pairs: list[FacePair]) -> dict[int, list[FacePair]]:
    """The pairs of each tracked face, in frame order: what temporal measures work on."""
    out: dict[int, list[FacePair]] = {}
    for p in pairs:
        out.setdefault(p.track, []).append(p)
    for rs in out.values():
        rs.sort(key=lambda p: p.frame)
    return out
