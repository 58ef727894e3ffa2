"""Which faces to swap, and where: the per-frame landmarks a conversion works from.

Two sources, one result (a :class:`FacePlan`):

* a **face set** - the user's (``faceset=``), or the one convert extracts on the fly into
  ``OUTPUT.parts/`` for a video. Its bridged, smoothed landmarks (extract's tracking) are used
  by frame index, so video conversion reuses extract's detection, tracking, gap bridging and
  smoothing, and resumes like it;
* **detection** on a single image (photos, ``preview=``).

Only faces of the model's *source* identity are swapped: a face (a whole track, on video) is
kept when its mean embedding lies within ``threshold`` of the source's mean embedding. Deciding
per track rather than per frame means a face is never swapped in one frame and left in the next.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.errors import ModelMismatchError
from facetwin.extract.detect import SecondDetector, detect_full
from facetwin.extract.detectors import Detector
from facetwin.extract.identity import distances, embedding
from facetwin.extract.landmarks import landmarks_68
from facetwin.face.align import INNER
from facetwin.face.tracking import gaussian_smooth
from facetwin.faceset import FaceRecord, FaceSet
from facetwin.media.image import read_image
from facetwin.media.video import is_video_path, probe

log = logging.getLogger(__name__)


@dataclass
class FacePlan:
    """The faces to swap in one source (a video, or one image as frame 0).

    frames: frame index -> (68, 2) landmarks, image pixels, of each face to swap there.
    found: faces seen, of every identity (bridged ones included).
    other: faces left alone because they are someone else.
    closest: smallest identity distance among the faces left alone (for the error message).
    """

    frames: dict[int, list[np.ndarray]] = field(default_factory=dict)
    found: int = 0
    other: int = 0
    closest: float | None = None

    @property
    def swapped(self) -> int:
        return sum(len(v) for v in self.frames.values())

    def faces(self, frame: int) -> list[np.ndarray]:
        return self.frames.get(frame, [])

    def note_other(self, distance: float | None) -> None:
        self.other += 1
        if distance is not None:
            self.closest = distance if self.closest is None else min(self.closest, distance)


def identity_distance(emb: np.ndarray | None, reference: np.ndarray | None) -> float | None:
    """Embedding distance to the source identity; None when either is unknown."""
    if emb is None or reference is None:
        return None
    return float(distances(emb, reference[None])[0])


def is_source(distance: float | None, reference: np.ndarray | None, threshold: float) -> bool:
    """Swap this face? With no reference every face is swapped; with one, a face of unknown
    identity is not (only the source person is ever replaced)."""
    if reference is None:
        return True
    return distance is not None and distance < threshold


def check_faceset_identity(
    fs: FaceSet,
    reference: np.ndarray | None,
    other: np.ndarray | None,
    source_side: str,
    threshold: float,
) -> None:
    """ModelMismatchError when the face set shows someone else than the model's source side."""
    mean = fs.mean_embedding()
    d = identity_distance(mean, reference)
    if d is None or d < threshold:
        return
    hint = "use the model trained on this person"
    d_other = identity_distance(mean, other)
    if d_other is not None and d_other < threshold:
        other_side, flip = ("b", "b2a") if source_side == "a" else ("a", "a2b")
        hint = f"it matches the model's side {other_side}: use direction {flip}"
    raise ModelMismatchError(
        f"face set {fs.root} shows someone else than side {source_side} of the model "
        f"(identity distance {d:.2f} >= {threshold}); {hint}"
    )


def moved_source(fs: FaceSet, path: Path) -> Any:
    """The face set's source with ``path``'s file name and frame size, when exactly one
    matches: a video extracted in one place and converted from another is the same video."""
    rows = [
        row
        for src in fs.sources()
        if Path(str(src["path"])).name == path.name
        and (row := fs.source(str(src["path"]))) is not None
    ]
    if len(rows) != 1:
        return None
    if is_video_path(path):
        info = probe(path)
        size = (info.width, info.height)
    else:
        size = read_image(path).shape[1::-1]
    if (rows[0]["width"], rows[0]["height"]) != tuple(size):
        return None
    log.info("face set %s: using its source %s for %s", fs.root, rows[0]["path"], path)
    return rows[0]


# -- per-track steps (pure functions on arrays) ------------------------------------------------


def fill_between(
    frames: np.ndarray, landmarks: np.ndarray, max_step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate landmarks for the frames between samples at most ``max_step``
    apart (a face set extracted with ``every`` > 1 holds only every N-th frame)."""
    if len(frames) < 2 or max_step <= 1:
        return frames, landmarks
    out_f, out_l = [frames[:1]], [landmarks[:1]]
    for i in range(1, len(frames)):
        gap = int(frames[i] - frames[i - 1])
        if 1 < gap <= max_step:
            t = (np.arange(1, gap) / gap)[:, None, None]
            out_f.append(frames[i - 1] + np.arange(1, gap))
            out_l.append(landmarks[i - 1] * (1 - t) + landmarks[i] * t)
        out_f.append(frames[i : i + 1])
        out_l.append(landmarks[i : i + 1])
    return np.concatenate(out_f), np.concatenate(out_l).astype(np.float32)


def steady_scale(frames: np.ndarray, landmarks: np.ndarray, sigma: float) -> np.ndarray:
    """Landmarks rescaled about their inner centre so the face size follows a slow curve.

    The landmark detector's estimate of face size wobbles by a percent or two from frame to
    frame; a pasted face that breathes like that is one of the most visible artefacts. Position
    and rotation keep extract's lighter smoothing (they must follow real motion); only the
    log-size of each contiguous run is smoothed again with ``sigma`` frames.
    """
    if sigma <= 0 or len(frames) < 3:
        return landmarks
    inner = landmarks[:, INNER].astype(np.float64)
    centre = inner.mean(1, keepdims=True)
    log_size = np.log(np.sqrt(((inner - centre) ** 2).sum(-1).mean(-1)))
    out = landmarks.astype(np.float64).copy()
    cuts = np.flatnonzero(np.diff(frames) > 1) + 1
    for run in np.split(np.arange(len(frames)), cuts):
        if len(run) < 3:
            continue
        gain = np.exp(gaussian_smooth(log_size[run], sigma) - log_size[run])[:, None, None]
        out[run] = centre[run] + (landmarks[run] - centre[run]) * gain
    return out.astype(np.float32)


# -- plans -------------------------------------------------------------------------------------


def plan_from_records(
    records: list[FaceRecord],
    reference: np.ndarray | None,
    threshold: float,
    smooth: bool,
    scale_sigma: float,
    every: int = 1,
) -> FacePlan:
    """A plan from one source's face records (bridged ones included), decided per track."""
    plan = FacePlan(found=len(records))
    by_track: dict[int, list[FaceRecord]] = {}
    for r in records:
        by_track.setdefault(r.face if r.track is None else r.track, []).append(r)
    for recs in by_track.values():
        embs = [r.embedding for r in recs if r.embedding is not None]
        d = identity_distance(np.mean(embs, axis=0) if embs else None, reference)
        if not is_source(d, reference, threshold):
            for _ in recs:
                plan.note_other(d)
            continue
        recs = sorted(recs, key=lambda r: r.frame)
        frames = np.array([r.frame for r in recs])
        lms = np.stack(
            [
                r.landmarks_smooth if smooth and r.landmarks_smooth is not None else r.landmarks
                for r in recs
            ]
        )
        frames, lms = fill_between(frames, lms, every)
        if smooth:
            lms = steady_scale(frames, lms, scale_sigma)
        for f, lm in zip(frames.tolist(), lms):
            plan.frames.setdefault(int(f), []).append(lm)
    return plan


def detect_faces(
    image: np.ndarray,
    detector: Detector,
    max_side: int,
    reference: np.ndarray | None,
    threshold: float,
    second: SecondDetector | None = None,
) -> FacePlan:
    """A one-frame plan for an image: detect (and add the ``second`` detector's faces the first
    missed), landmark, and (with a reference) identify."""
    plan = FacePlan()
    found = detect_full(detector, image, max_side)
    if second is not None:
        found += [d for d, _ in second.missed(image, found)]
    for det in found:
        plan.found += 1
        lm = landmarks_68(image, det.box)
        d = None if reference is None else identity_distance(embedding(image, lm), reference)
        if is_source(d, reference, threshold):
            plan.frames.setdefault(0, []).append(lm)
        else:
            plan.note_other(d)
    return plan
