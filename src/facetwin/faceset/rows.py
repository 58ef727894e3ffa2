"""The face set's rows: :class:`FaceRecord` (a face as readers get it, checked and decoded) and
:class:`FaceRow` (a face as writers hand it in), with the value codecs that turn a damaged or
crafted value into an InputError.

The tables themselves (and ``DB_NAME``, ``FACES_DIR``, ``SCHEMA``, ``SCHEMA_VERSION``, which are
re-exported here) are in :mod:`facetwin.faceset.schema`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from facetwin.errors import OutputError
from facetwin.face.align import transform_points
from facetwin.faceset.schema import DB_NAME, FACES_DIR, SCHEMA, SCHEMA_VERSION


@dataclass(kw_only=True)
class FaceColumns:
    """The columns a face has both as readers get it (:class:`FaceRecord`) and as writers hand
    it in (:class:`FaceRow`): where it is (source, frame, index in the frame, track, file) and
    its geometry. Defined once so that a column both sides share is added in one place;
    keyword-only so that each side adds its own fields, with or without defaults."""

    source_id: int
    frame: int
    face: int
    file: str | None
    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    landmarks_smooth: np.ndarray | None
    matrix: np.ndarray
    detector: str
    track: int | None


@dataclass(kw_only=True)
class FaceRecord(FaceColumns):
    """One face row. Arrays are decoded; ``file`` is relative to the face set's faces/ folder."""

    id: int
    source: str
    embedding: np.ndarray | None
    embedding_frame: int | None
    blur: float | None
    yaw: float | None
    pitch: float | None
    roll: float | None
    bridged: bool

    @property
    def landmarks_aligned(self) -> np.ndarray:
        """Raw landmarks in aligned-crop pixels."""

        return transform_points(self.landmarks, self.matrix).astype(np.float32)


def encode_png(image: np.ndarray, rgb: bool = True) -> bytes:
    img = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if rgb and image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OutputError("PNG encoding failed")
    return buf.tobytes()


@dataclass(kw_only=True)
class FaceRow(FaceColumns):
    """One face as a writer hands it to the face set (extract's faces, bridged gaps included).

    The store encodes it (:meth:`columns`): writers never build SQL or blobs. ``masks`` and
    ``embedding`` may still be in flight (a ``Future``) while extract overlaps PNG encoding and
    embedding with the next frames; :meth:`FaceSet.commit_frames` takes them resolved.
    """

    masks: Any = None  # PNG bytes of the mask channels (None for a bridged face)
    embedding: Any = None  # (128,) float32, or None
    embedding_frame: int | None = None
    blur: float | None = None
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    bridged: bool = False

    def columns(self) -> dict[str, object]:
        """The faces table's values for this row."""
        if isinstance(self.embedding, bytes) or self.embedding is None:
            emb = self.embedding
        else:
            emb = as_blob(self.embedding, np.float32)
        return {
            "source_id": self.source_id,
            "frame": self.frame,
            "face": self.face,
            "file": self.file,
            "box": json.dumps([round(float(v), 2) for v in self.box]),
            "score": self.score,
            "landmarks": as_blob(self.landmarks, np.float32),
            "landmarks_smooth": as_blob(self.landmarks_smooth, np.float32),
            "matrix": as_blob(self.matrix, np.float64),
            "masks": self.masks,
            "embedding": emb,
            "embedding_frame": self.embedding_frame,
            "detector": self.detector,
            "blur": self.blur,
            "yaw": self.yaw,
            "pitch": self.pitch,
            "roll": self.roll,
            "track": self.track,
            "bridged": int(self.bridged),
        }


def as_blob(a: np.ndarray | None, dtype: type) -> bytes | None:
    return None if a is None else np.ascontiguousarray(a, dtype=dtype).tobytes()


def as_array(b: bytes | None, dtype: type, shape: tuple[int, ...]) -> np.ndarray | None:
    """Decode a stored array: ValueError unless it is a blob of exactly ``shape`` finite values."""
    if b is None:
        return None
    if not isinstance(b, bytes):
        raise ValueError(f"a {type(b).__name__} where an array blob belongs")
    need = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(b) != need:
        raise ValueError(f"an array blob of {len(b)} bytes where {need} belong")
    a: np.ndarray = np.frombuffer(b, dtype=dtype).reshape(shape).copy()
    if not np.isfinite(a).all():
        raise ValueError("an array with NaN or infinite values")
    return a


def as_int(v: object, name: str, optional: bool = False) -> int | None:
    if v is None and optional:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{name} is {v!r}, not a whole number")
    return v


def as_num(v: object, name: str, optional: bool = True) -> float | None:
    if v is None and optional:
        return None
    if not isinstance(v, int | float) or isinstance(v, bool) or not np.isfinite(v):
        raise ValueError(f"{name} is {v!r}, not a number")
    return float(v)


def as_text(v: object, name: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{name} is {v!r}, not text")
    return v


def safe_face_file(name: object) -> str:
    """``name`` if it is a plain file name inside faces/ (no folder part, not hidden); else
    ValueError - a crafted face set must not make facetwin read outside its folder."""
    if (
        not isinstance(name, str)
        or not name
        or name.startswith(".")
        or any(c in name for c in "/\\\0")
        or len(name) > 255
    ):
        raise ValueError(f"face file {name!r} is not a file name inside {FACES_DIR}/")
    return name


def as_box(text: object) -> tuple[float, float, float, float]:
    try:
        box = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        box = None
    if (
        not isinstance(box, list)
        or len(box) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)
        or not np.isfinite(box).all()
    ):
        raise ValueError(f"box {str(text)[:40]!r} is not a JSON list of 4 numbers")
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


__all__ = [
    "DB_NAME",
    "FACES_DIR",
    "SCHEMA",
    "SCHEMA_VERSION",
    "FaceColumns",
    "FaceRecord",
    "FaceRow",
    "as_array",
    "as_blob",
    "as_box",
    "as_int",
    "as_num",
    "as_text",
    "encode_png",
    "safe_face_file",
]
