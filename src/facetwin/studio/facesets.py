"""The face-set cleaner: every face of a set with the figures to sort by, thumbnails, deletion.

Sorting keys are what extract stored: blur (variance of the Laplacian, low = blurry), head pose
(yaw/pitch, degrees) and the identity distance of each face's embedding to the set's mean (the
faces of someone else, or not faces at all, sit far from it). The faceswap sort tool's job.

Deleting a face removes its row from ``faceset.db`` - so training, which reads the rows, never
sees it again - and moves its PNG into ``FACESET/deleted/`` rather than destroying it (undo by
hand). It goes through the face set's own writes (:meth:`FaceSet.delete_faces`,
:meth:`FaceSet.set_mask`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from facetwin.faceset import FaceRecord, FaceSet
from facetwin.media.image import decode_image, encode_image

SORT_KEYS = ("frame", "blur", "yaw", "pitch", "identity")
DELETED_DIR = "deleted"
THUMB = 112


@dataclass(frozen=True)
class FaceInfo:
    """One face as the grid shows it."""

    id: int
    source: str
    frame: int
    blur: float | None
    yaw: float | None
    pitch: float | None
    roll: float | None
    distance: float | None  # to the set's mean embedding


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 3)


def list_faces(path: Path, sort: str = "frame", descending: bool = False) -> list[FaceInfo]:
    """Every (non-bridged) face of the set, sorted by ``sort``; faces without the value last."""
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}")
    with FaceSet.open(path) as fs:
        records = fs.faces()
    mean = _mean_embedding(records)
    faces = [
        FaceInfo(
            id=r.id,
            source=Path(r.source).name,
            frame=r.frame,
            blur=_finite(r.blur),
            yaw=_finite(r.yaw),
            pitch=_finite(r.pitch),
            roll=_finite(r.roll),
            distance=_distance(r, mean),
        )
        for r in records
    ]
    return sorted(faces, key=lambda f: _sort_key(f, sort, descending))


def _mean_embedding(records: list[FaceRecord]) -> np.ndarray | None:
    embs = [r.embedding for r in records if r.embedding is not None]
    return np.mean(embs, axis=0) if embs else None


def _distance(r: FaceRecord, mean: np.ndarray | None) -> float | None:
    if r.embedding is None or mean is None:
        return None
    return _finite(float(np.linalg.norm(r.embedding - mean)))


def _sort_key(f: FaceInfo, sort: str, descending: bool) -> tuple[int, float]:
    """Missing values sort last either way; yaw and pitch sort by how far the head turns."""
    value = {
        "frame": float(f.frame),
        "blur": f.blur,
        "yaw": None if f.yaw is None else abs(f.yaw),
        "pitch": None if f.pitch is None else abs(f.pitch),
        "identity": f.distance,
    }[sort]
    if value is None:
        return (1, 0.0)
    return (0, -value if descending else value)


def face_dicts(faces: list[FaceInfo]) -> list[dict[str, object]]:
    return [asdict(f) for f in faces]


def thumbnail(path: Path, face_id: int, size: int = THUMB) -> bytes:
    """The aligned face ``face_id`` as a small JPEG (a grid of hundreds stays light)."""
    with FaceSet.open(path) as fs:
        rec = _record(fs, face_id)
        image = fs.load_aligned(rec)
    small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return encode_image(small, ".jpg", 88)


def _record(fs: FaceSet, face_id: int) -> FaceRecord:
    for r in fs.faces():
        if r.id == face_id:
            return r
    raise KeyError(face_id)


def delete_faces(path: Path, ids: list[int]) -> int:
    """Remove faces ``ids`` from the set (rows gone, PNGs moved to ``deleted/``); how many."""
    wanted = {int(i) for i in ids}
    with FaceSet.open(path) as fs:
        doomed = fs.delete_faces(wanted)
        files = [fs.face_path(r) for r in doomed if r.file is not None]
    bin_ = path / DELETED_DIR
    bin_.mkdir(exist_ok=True)
    for f in files:
        with contextlib.suppress(OSError):  # the row is what counts; a missing file is fine
            f.replace(bin_ / f.name)
    return len(doomed)


# -- the mask editor ---------------------------------------------------------------------------
#
# The simplest useful form of DeepFaceLab's XSeg editor: where extract's landmark mask is wrong
# (hair or a hand over the forehead, a jaw cut off), paint it right. Training reads each face's
# stored mask (the mask_l1 loss and the preview), so the edit changes what the model learns.
# The edited mask replaces both stored kinds: "components" and "extended" become the same
# painted region (the stored PNG encodes 255 = both, 0 = neither).


def aligned_png(path: Path, face_id: int) -> bytes:
    """The aligned face at full size, as PNG (what the editor paints over)."""
    with FaceSet.open(path) as fs:
        image = fs.load_aligned(_record(fs, face_id))
    return encode_image(image, ".png")


def mask_png(path: Path, face_id: int, kind: str = "extended") -> bytes:
    """The face's stored mask of ``kind`` as a grey PNG, 0 or 255."""
    with FaceSet.open(path) as fs:
        mask = fs.load_mask(_record(fs, face_id), kind)
    return encode_image(mask, ".png")


def save_mask(path: Path, face_id: int, png: bytes) -> int:
    """Store a painted mask (any image the face's size; > 127 is face); its face pixels."""
    painted = decode_image(png, grey=True)
    with FaceSet.open(path) as fs:
        rec = _record(fs, face_id)
        size = fs.size
        if painted is None or painted.shape != (size, size):
            raise ValueError(f"the mask must be a {size}x{size} image")
        mask = np.where(painted > 127, 255, 0).astype(np.uint8)
        fs.set_mask(rec.id, encode_image(mask, ".png"))
    return int((mask > 0).sum())
