"""``facetwin info``: what a face set holds - faces, frames, sources, identities, blur, pose."""

from __future__ import annotations

import numpy as np

from facetwin.extract.identity import SAME_PERSON, cluster
from facetwin.faceset import FaceSet


def _summary(values: list[float]) -> dict[str, float]:
    a = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if not a.size:
        return {}
    q = np.percentile(a, [0, 50, 100])
    return {
        "min": round(float(q[0]), 2),
        "median": round(float(q[1]), 2),
        "max": round(float(q[2]), 2),
    }


def faceset_info(path: str) -> dict[str, object]:
    """A JSON-able summary of a face set (always has 'faces' and 'frames')."""
    with FaceSet.open(path) as fs:
        counts = fs.counts()
        recs = fs.faces()
        embs = np.asarray([r.embedding for r in recs if r.embedding is not None])
        labels = cluster(embs, SAME_PERSON) if len(embs) else np.zeros(0, int)
        sizes = np.bincount(labels) if len(labels) else np.zeros(0, int)
        sources = []
        for s in fs.sources():  # checked rows: a damaged set is an InputError, not a traceback
            faces = sum(1 for r in recs if r.source_id == s["id"])
            sources.append(
                {
                    "path": s["path"],
                    "kind": s["kind"],
                    "size": [s["width"], s["height"]],
                    "fps": s["fps"],
                    "frames": s["frame_count"],
                    "done": s["status"] == "done",
                    "next_frame": s["next_frame"],
                    "faces": faces,
                }
            )
        return {
            **counts,
            "settings": fs.settings(),
            "identities": len(sizes),
            "identity_sizes": sizes.tolist(),
            "blur": _summary([r.blur for r in recs]),  # type: ignore[misc]
            "yaw": _summary([r.yaw for r in recs]),  # type: ignore[misc]
            "pitch": _summary([r.pitch for r in recs]),  # type: ignore[misc]
            "roll": _summary([r.roll for r in recs]),  # type: ignore[misc]
            "detectors": sorted({r.detector for r in recs}),
            "sources_detail": sources,
        }


def format_info(info: dict[str, object]) -> str:
    """The summary as a few human-readable lines."""
    lines = [
        f"faces {info['faces']} (+{info['bridged']} bridged) in {info['frames']} frames "
        f"({info['frames_with_faces']} with faces) from {info['sources']} sources",
        f"identities {info['identities']} {info['identity_sizes']}",
    ]
    for key in ("blur", "yaw", "pitch", "roll"):
        s = info[key]
        if s:
            lines.append(f"{key:6s} min {s['min']:>8} median {s['median']:>8} max {s['max']:>8}")  # type: ignore[index]
    for s in info["sources_detail"]:  # type: ignore[attr-defined]
        state = "done" if s["done"] else f"partial (next frame {s['next_frame']})"
        lines.append(f"  {s['kind']:5s} {s['faces']:5d} faces  {state:8s}  {s['path']}")
    return "\n".join(lines)
