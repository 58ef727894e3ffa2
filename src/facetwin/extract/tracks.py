"""Extract's face tracks through a video: following faces, their state for resume, and bridging.

Separate from the Extractor's video loop (:mod:`facetwin.extract.pipeline`) because none of it
touches the loop's I/O: which detection continues which track, the tracker state committed with
every batch of frames (so that a resumed run continues exactly where the last commit left it),
and the end-of-source pass that bridges short gaps in a track and smooths its landmarks. Each is
a function of its inputs, testable without a video.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from facetwin.extract.analyse import emb_bytes
from facetwin.extract.config import ExtractConfig
from facetwin.extract.detect import detect_near
from facetwin.extract.detectors import Detection, Detector
from facetwin.extract.landmarkers import StoredFace
from facetwin.face.align import alignment_matrix
from facetwin.face.boxes import iou, landmark_box
from facetwin.face.tracking import smooth_track
from facetwin.faceset import FaceRecord, FaceRow

#: A whole-frame detection continues the free track it overlaps most, above this IoU.
MATCH_IOU = 0.3


@dataclass
class Track:
    """A face followed through a video; ``keep`` says whether it passed the identity filter."""

    id: int
    box: tuple[float, float, float, float]
    last_frame: int
    emb: np.ndarray | Future[np.ndarray] | None = None
    emb_frame: int | None = None
    keep: bool = True


# -- following faces -------------------------------------------------------------------------


def follow_tracks(
    det: Detector, frame: np.ndarray, tracks: list[Track]
) -> list[tuple[Track | None, Detection]] | None:
    """Each track's face looked for near where it was; None as soon as one is lost (the caller
    then searches the whole frame, which also finds faces that have just come in)."""
    found: list[tuple[Track | None, Detection]] = []
    for t in tracks:
        near = detect_near(det, frame, t.box)
        if near is None:
            return None
        found.append((t, near))
    return found


def match_detections(
    tracks: list[Track], dets: list[Detection]
) -> list[tuple[Track | None, Detection]]:
    """Whole-frame detections, left to right, each with the free track it continues (None for
    a new face): the one it overlaps most, if by more than :data:`MATCH_IOU`."""
    found: list[tuple[Track | None, Detection]] = []
    free = list(tracks)
    for d in sorted(dets, key=lambda d: (d.box[0], d.box[1])):
        best = max(free, key=lambda t: iou(t.box, d.box), default=None)
        if best is not None and iou(best.box, d.box) > MATCH_IOU:
            free.remove(best)
            found.append((best, d))
        else:
            found.append((None, d))
    return found


# -- tracker state (resume) ------------------------------------------------------------------


def track_state(source_id: int, tracks: list[Track]) -> list[tuple[object, ...]]:
    """The tracks table's rows for ``tracks`` (waits for an embedding still being computed)."""
    return [
        (
            source_id,
            t.id,
            t.last_frame,
            json.dumps([float(v) for v in t.box]),
            emb_bytes(t.emb),
            t.emb_frame,
            int(t.keep),
        )
        for t in tracks
    ]


def restore_tracks(rows: list[tuple], start: int, every: int) -> list[Track]:  # type: ignore[type-arg]
    """Tracks alive at the last committed frame (``rows``: the stored tracker state; ``start``:
    the first frame not committed), so that the tracker resumes from exactly there."""
    last_processed = ((start - 1) // every) * every
    out = []
    for tid, last_frame, box, emb, emb_frame, keep in rows:
        if last_frame == last_processed:
            out.append(
                Track(
                    tid,
                    tuple(json.loads(box)),
                    last_frame,
                    None if emb is None else np.frombuffer(emb, np.float32).copy(),
                    emb_frame,
                    bool(keep),
                )
            )
    return out


def resume_landmarker(
    landmarker: Any, source: int, tracks: list[Track], stored: list[FaceRecord], every: int
) -> None:
    """Give a landmarker that follows faces over frames (one with ``resume``, e.g.
    ``dlib-mesh-pose-fast``) each live track's ``stored`` faces (the source's, in frame order),
    so that it goes on from the resume point as an uninterrupted run would (landmarkers/base.py)."""
    resume = getattr(landmarker, "resume", None)
    if resume is None or not tracks:
        return
    live: dict[int, list[StoredFace]] = {t.id: [] for t in tracks}
    for rec in stored:
        if rec.track in live:
            pose = tuple(np.nan if v is None else v for v in (rec.yaw, rec.pitch, rec.roll))
            live[rec.track].append(StoredFace(rec.frame // every, rec.landmarks, pose))  # type: ignore[arg-type]
    for track, faces in live.items():
        resume(source, track, faces)


def next_track_id(stored: list[tuple], tracks: list[Track]) -> int:  # type: ignore[type-arg]
    """A track id not used yet in the source: neither stored (ended tracks) nor alive."""
    ids = [t[0] for t in stored] + [t.id for t in tracks]
    return max(ids, default=-1) + 1


# -- end of a source: bridging and smoothing -------------------------------------------------


def smooth_and_bridge(
    recs: list[FaceRecord], source_id: int, cfg: ExtractConfig
) -> tuple[dict[int, np.ndarray], list[FaceRow]]:
    """Smoothed landmarks (face id -> (68, 2)) of every track in ``recs`` and the bridged faces
    that fill its short gaps, numbered after the faces their frame already has."""
    per_frame: dict[int, int] = {}
    for r in recs:
        per_frame[r.frame] = per_frame.get(r.frame, 0) + 1
    smooth: dict[int, np.ndarray] = {}
    bridged: list[FaceRow] = []
    by_track: dict[int, list[FaceRecord]] = {}
    for r in recs:
        by_track.setdefault(r.track or 0, []).append(r)
    for tid, rs in sorted(by_track.items()):
        frames = np.array([r.frame for r in rs])
        f_out, lm_out, is_b = smooth_track(
            frames, np.stack([r.landmarks for r in rs]), cfg.smooth, cfg.every
        )
        by_frame = {r.frame: r for r in rs}
        for f, lm, b in zip(f_out.tolist(), lm_out, is_b):
            if not b:
                smooth[by_frame[f].id] = lm
                continue
            prev = max((r for r in rs if r.frame < f), key=lambda r: r.frame)
            face = per_frame.get(f, 0)
            per_frame[f] = face + 1
            bridged.append(_bridged_row(source_id, f, face, tid, lm, prev, cfg))
    return smooth, bridged


def _bridged_row(
    source_id: int,
    frame: int,
    face: int,
    track: int,
    lm: np.ndarray,
    prev: FaceRecord,
    cfg: ExtractConfig,
) -> FaceRow:
    """A face the detector missed inside a track: interpolated landmarks, no image, and the
    embedding of the track's face before the gap."""
    return FaceRow(
        source_id=source_id,
        frame=frame,
        face=face,
        file=None,
        box=landmark_box(lm),
        score=0.0,
        landmarks=lm,
        landmarks_smooth=lm,
        matrix=alignment_matrix(lm, cfg.size, cfg.coverage),
        detector="bridge",
        track=track,
        embedding=prev.embedding,
        embedding_frame=prev.embedding_frame,
        bridged=True,
    )
