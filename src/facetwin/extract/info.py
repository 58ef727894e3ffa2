"""``facetwin info``: what a face set holds - faces, frames, sources, identities, blur, pose.

Read through the face set's typed reads (:class:`facetwin.faceset.FaceSet`: counts, face
records, :class:`~facetwin.faceset.reads.SourceRecord`), never its SQL, so a change of the
schema or a damaged set is handled where the face set is, once for every reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from facetwin.extract.identity import SAME_PERSON, cluster
from facetwin.faceset import FaceSet
from facetwin.faceset.reads import SourceRecord


@dataclass(frozen=True)
class SourceInfo:
    """One source as ``info`` shows it."""

    path: str
    kind: str
    size: tuple[int | None, int | None]
    fps: float | None
    frames: int | None
    done: bool
    next_frame: int
    faces: int

    @classmethod
    def of(cls, s: SourceRecord, faces: int) -> SourceInfo:
        return cls(
            s.path, s.kind, (s.width, s.height), s.fps, s.frame_count, s.done, s.next_frame, faces
        )


@dataclass(frozen=True)
class FaceSetInfo:
    """A face set's summary; :meth:`as_dict` is ``info --json`` (keys in this order)."""

    faces: int
    bridged: int
    frames: int
    frames_with_faces: int
    sources: int
    settings: dict[str, object]
    identities: int
    identity_sizes: list[int]
    blur: dict[str, float]  # min, median, max; empty when no face has the value
    yaw: dict[str, float]
    pitch: dict[str, float]
    roll: dict[str, float]
    detectors: list[str]
    sources_detail: list[SourceInfo]

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        for s in d["sources_detail"]:
            s["size"] = list(s["size"])  # JSON's array, as before
        return d


def _summary(values: Sequence[float | None]) -> dict[str, float]:
    """min, median and max of the finite values (empty when there are none)."""
    a = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if not a.size:
        return {}
    q = np.percentile(a, [0, 50, 100])
    return {
        "min": round(float(q[0]), 2),
        "median": round(float(q[1]), 2),
        "max": round(float(q[2]), 2),
    }


def read_info(path: str) -> FaceSetInfo:
    """The summary of the face set at ``path`` (InputError for a damaged one, not a traceback:
    every read below is checked by the face set)."""
    with FaceSet.open(path) as fs:
        counts = fs.counts()
        recs = fs.faces()
        per_source = fs.faces_per_source()
        sources = [SourceInfo.of(s, per_source.get(s.id, 0)) for s in fs.source_records()]
        settings = fs.settings()
    embs = np.asarray([r.embedding for r in recs if r.embedding is not None])
    labels = cluster(embs, SAME_PERSON) if len(embs) else np.zeros(0, int)
    sizes = np.bincount(labels) if len(labels) else np.zeros(0, int)
    return FaceSetInfo(
        faces=counts["faces"],
        bridged=counts["bridged"],
        frames=counts["frames"],
        frames_with_faces=counts["frames_with_faces"],
        sources=counts["sources"],
        settings=settings,
        identities=len(sizes),
        identity_sizes=[int(n) for n in sizes],
        blur=_summary([r.blur for r in recs]),
        yaw=_summary([r.yaw for r in recs]),
        pitch=_summary([r.pitch for r in recs]),
        roll=_summary([r.roll for r in recs]),
        detectors=sorted({r.detector for r in recs}),
        sources_detail=sources,
    )


def faceset_info(path: str) -> dict[str, object]:
    """A JSON-able summary of a face set (always has 'faces' and 'frames')."""
    return read_info(path).as_dict()


def format_info(info: FaceSetInfo) -> str:
    """The summary as a few human-readable lines."""
    lines = [
        f"faces {info.faces} (+{info.bridged} bridged) in {info.frames} frames "
        f"({info.frames_with_faces} with faces) from {info.sources} sources",
        f"identities {info.identities} {info.identity_sizes}",
    ]
    for key, s in (
        ("blur", info.blur),
        ("yaw", info.yaw),
        ("pitch", info.pitch),
        ("roll", info.roll),
    ):
        if s:
            lines.append(f"{key:6s} min {s['min']:>8} median {s['median']:>8} max {s['max']:>8}")
    for src in info.sources_detail:
        state = "done" if src.done else f"partial (next frame {src.next_frame})"
        lines.append(f"  {src.kind:5s} {src.faces:5d} faces  {state:8s}  {src.path}")
    return "\n".join(lines)
