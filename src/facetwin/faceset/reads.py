"""Reading a face set (:class:`FaceSetReader`): settings, sources, face records, images, masks.

Separate from the writes (:mod:`facetwin.faceset.store`, which extract alone uses) because every
other stage only reads, and because this is where a damaged or crafted face set is caught: each
read turns a damaged database page into an InputError naming the set, each stored value is
checked (:mod:`facetwin.faceset.rows`), and a face file name may not lead outside ``faces/``.
:class:`facetwin.faceset.FaceSet` is this class plus opening, creating and writing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np

from facetwin.errors import InputError
from facetwin.face.masks import cut_of
from facetwin.faceset.rows import (
    FACES_DIR,
    FaceRecord,
    as_array,
    as_box,
    as_int,
    as_num,
    as_text,
    safe_face_file,
)
from facetwin.media.image import decode_image


@dataclass(frozen=True)
class SourceRecord:
    """One source of a face set (a photo or a video) as readers get it: checked, typed.

    width, height, fps, frame_count: None where the source did not say (a photo has no fps).
    next_frame: the first frame an unfinished extraction has still to process.
    """

    id: int
    path: str
    kind: str  # image | video
    width: int | None
    height: int | None
    fps: float | None
    frame_count: int | None
    next_frame: int
    status: str  # running | done

    @property
    def done(self) -> bool:
        return self.status == "done"


class FaceSetReader:
    """The reads of a face set over an open connection; see :class:`facetwin.faceset.FaceSet`."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        self.root = root
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _damaged(self, e: Exception) -> InputError:
        if isinstance(e, sqlite3.OperationalError):
            return InputError(f"cannot read face set {self.root} ({e})")
        return InputError(f"face set {self.root} is damaged ({e}); extract it again")

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Around every read: a damaged page is an InputError that names the face set."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from None

    # -- settings ------------------------------------------------------------------------------
    def settings(self) -> dict[str, object]:
        with self._reading():
            row = self.conn.execute("SELECT value FROM meta WHERE key='settings'").fetchone()
        if not row:
            return {}
        try:
            value = json.loads(row[0])
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, dict):
            raise InputError(f"face set {self.root} is damaged: its settings are not a JSON object")
        return value

    @property
    def size(self) -> int:
        v = self.settings().get("size", 256)
        if not isinstance(v, int) or isinstance(v, bool) or not 8 <= v <= 8192:
            raise InputError(f"face set {self.root} is damaged: its face size is {v!r}")
        return v

    @property
    def coverage(self) -> float:
        v = self.settings().get("coverage", 2.0)
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0.1 <= v <= 10:
            raise InputError(f"face set {self.root} is damaged: its coverage is {v!r}")
        return float(v)

    @property
    def every(self) -> int:
        """The video frame step the set was extracted with (1: every frame)."""
        v = self.settings().get("every", 1)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InputError(f"face set {self.root} is damaged: its frame step is {v!r}")
        return v

    # -- sources and progress ----------------------------------------------------------------
    def source(self, path: str) -> sqlite3.Row | None:
        """The source row of ``path`` (columns by name), checked, or None."""
        self.conn.row_factory = sqlite3.Row
        try:
            with self._reading():
                row = self.conn.execute("SELECT * FROM sources WHERE path=?", (path,)).fetchone()
        finally:
            self.conn.row_factory = None
        if row is not None:
            self._check_source(tuple(row))
        return row

    _SOURCE_COLS = (
        "id, path, kind, width, height, fps, frame_count, next_frame, status"  # schema order
    )

    def _check_source(self, r: tuple) -> dict[str, object]:  # type: ignore[type-arg]
        """A sources row as a dict; InputError when a value has the wrong type."""
        try:
            out: dict[str, object] = {
                "id": as_int(r[0], "id"),
                "path": as_text(r[1], "path"),
                "kind": as_text(r[2], "kind"),
                "width": as_int(r[3], "width", True),
                "height": as_int(r[4], "height", True),
                "fps": as_num(r[5], "fps"),
                "frame_count": as_int(r[6], "frame_count", True),
                "next_frame": as_int(r[7], "next_frame"),
                "status": as_text(r[8], "status"),
            }
        except (ValueError, IndexError) as e:
            raise InputError(f"face set {self.root} is damaged: source {r[0]!r}: {e}") from None
        if out["kind"] not in ("image", "video") or out["status"] not in ("running", "done"):
            raise InputError(f"face set {self.root} is damaged: source {r[0]!r} is {r[2:]!r}")
        return out

    def sources(self) -> list[dict[str, object]]:
        """Every source (id, path, kind, width, height, fps, frame_count, next_frame, status)."""
        with self._reading():
            rows = list(self.conn.execute(f"SELECT {self._SOURCE_COLS} FROM sources ORDER BY id"))
        return [self._check_source(r) for r in rows]

    def source_records(self) -> list[SourceRecord]:
        """Every source, checked and typed, in the order they were added."""
        # the values have the field's types: _check_source checked each
        return [SourceRecord(**r) for r in self.sources()]  # type: ignore[arg-type]

    def faces_per_source(self) -> dict[int, int]:
        """Source id -> its faces with an image (bridged ones left out); a source without
        faces is absent."""
        sql = "SELECT source_id, COUNT(*) FROM faces WHERE bridged=0 GROUP BY source_id"
        with self._reading():
            rows = list(self.conn.execute(sql))
        if any(not isinstance(v, int) for row in rows for v in row):
            raise InputError(f"face set {self.root} is damaged: a face's source is not a number")
        return {int(s): int(n) for s, n in rows}

    # -- reading -----------------------------------------------------------------------------
    _COLS = (
        "f.id, f.source_id, s.path, f.frame, f.face, f.file, f.box, f.score, f.landmarks, "
        "f.landmarks_smooth, f.matrix, f.embedding, f.embedding_frame, f.detector, f.blur, "
        "f.yaw, f.pitch, f.roll, f.track, f.bridged"
    )

    def faces(
        self, include_bridged: bool = False, source_id: int | None = None
    ) -> list[FaceRecord]:
        """Face records ordered by source, frame, face. Bridged faces have no image."""
        where = [] if include_bridged else ["f.bridged=0"]
        args: list[object] = []
        if source_id is not None:
            where.append("f.source_id=?")
            args.append(source_id)
        sql = f"SELECT {self._COLS} FROM faces f JOIN sources s ON s.id=f.source_id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY f.source_id, f.frame, f.face"
        with self._reading():  # rows decoded as they stream: no second copy of the blobs
            return [self._record(r) for r in self.conn.execute(sql, args)]

    def _record(self, r: tuple) -> FaceRecord:  # type: ignore[type-arg]
        """A checked face record: InputError when a stored value has the wrong type or shape."""
        try:
            return FaceRecord(
                id=as_int(r[0], "id"),  # type: ignore[arg-type]
                source_id=as_int(r[1], "source_id"),  # type: ignore[arg-type]
                source=as_text(r[2], "source path"),
                frame=as_int(r[3], "frame"),  # type: ignore[arg-type]
                face=as_int(r[4], "face"),  # type: ignore[arg-type]
                file=None if r[5] is None else safe_face_file(r[5]),
                box=as_box(r[6]),
                score=as_num(r[7], "score", False),  # type: ignore[arg-type]
                landmarks=as_array(r[8], np.float32, (68, 2)),  # type: ignore[arg-type]
                landmarks_smooth=as_array(r[9], np.float32, (68, 2)),
                matrix=as_array(r[10], np.float64, (2, 3)),  # type: ignore[arg-type]
                embedding=as_array(r[11], np.float32, (128,)),
                embedding_frame=as_int(r[12], "embedding_frame", True),
                detector=as_text(r[13], "detector"),
                blur=as_num(r[14], "blur"),
                yaw=as_num(r[15], "yaw"),
                pitch=as_num(r[16], "pitch"),
                roll=as_num(r[17], "roll"),
                track=as_int(r[18], "track", True),
                bridged=bool(as_int(r[19], "bridged")),
            )
        except (ValueError, TypeError, IndexError) as e:
            raise InputError(f"face set {self.root} is damaged: face {r[0]!r}: {e}") from None

    def face_path(self, rec: FaceRecord) -> Path:
        """The aligned face's file, which must lie inside faces/ (InputError otherwise)."""
        if rec.file is None:
            raise InputError(f"face {rec.id} is a bridged face and has no image")
        try:
            name = safe_face_file(rec.file)
        except ValueError as e:
            raise InputError(f"face set {self.root} is damaged: face {rec.id}: {e}") from None
        folder = self.root / FACES_DIR
        path = folder / name
        try:  # a symlink (or a faces/ that is one) must not lead outside the face set
            inside = path.resolve().parent == self.root.resolve() / FACES_DIR
        except (OSError, RuntimeError):
            inside = False
        if not inside:
            raise InputError(f"face set {self.root}: {path} leads outside the face set")
        return path

    def load_aligned(self, rec: FaceRecord) -> np.ndarray:
        """The aligned face as RGB uint8 (size, size, 3)."""

        path = self.face_path(rec)
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        img = decode_image(data) if data else None
        if img is None:
            raise InputError(f"aligned face {path} is missing or unreadable")
        return img

    def load_mask(self, rec: FaceRecord, kind: str = "components") -> np.ndarray:
        """uint8 (size, size) mask, 0/255, of kind 'components' or 'extended' (what extract cut
        out of the face - :meth:`load_cut` - is 0 in both)."""

        stored, img = self._stored_masks(rec)
        if not stored:
            raise InputError(f"face {rec.id} has no stored mask")
        if img is None:
            raise InputError(f"face set {self.root}: face {rec.id} has a corrupt mask")
        level = {"components": 255, "extended": 128}[kind]
        return np.where(img >= level, 255, 0).astype(np.uint8)

    def load_cut(self, rec: FaceRecord, which: str = "any") -> np.ndarray:
        """uint8 (size, size), 255 where extract cut the face out of its masks: a hand over it
        ('occluder'), the frame's edge ('edge') or either ('any'). All 0 for a face set made
        before the cuts, and for a face with no stored mask."""
        img = self._stored_masks(rec)[1]
        if img is None:
            return np.zeros((self.size, self.size), np.uint8)
        return cut_of(img, which)

    def _stored_masks(self, rec: FaceRecord) -> tuple[bool, np.ndarray | None]:
        """(whether the face has a stored masks PNG, the PNG decoded - None if it has none or
        it does not decode): the grey image both :meth:`load_mask` and :meth:`load_cut` read."""
        with self._reading():
            row = self.conn.execute("SELECT masks FROM faces WHERE id=?", (rec.id,)).fetchone()
        if row is None or row[0] is None:
            return False, None
        return True, decode_image(row[0], grey=True) if isinstance(row[0], bytes) else None

    def mean_embedding(self) -> np.ndarray | None:
        """Mean 128-D embedding of the set's faces (None when it has none)."""
        embs = [r.embedding for r in self.faces() if r.embedding is not None]
        return np.mean(embs, axis=0).astype(np.float32) if embs else None

    def counts(self) -> dict[str, int]:
        c = self.conn
        with self._reading():
            return {
                "faces": c.execute("SELECT COUNT(*) FROM faces WHERE bridged=0").fetchone()[0],
                "bridged": c.execute("SELECT COUNT(*) FROM faces WHERE bridged=1").fetchone()[0],
                "frames": c.execute("SELECT COUNT(*) FROM frames").fetchone()[0],
                "frames_with_faces": c.execute(
                    "SELECT COUNT(*) FROM frames WHERE faces>0"
                ).fetchone()[0],
                "sources": c.execute("SELECT COUNT(*) FROM sources").fetchone()[0],
            }

    def dump(self) -> list[tuple]:  # type: ignore[type-arg]
        """Every stored row (sources, frames, faces) in a fixed order - for comparing two runs."""
        c = self.conn
        with self._reading():
            return (
                list(c.execute("SELECT * FROM sources ORDER BY id"))
                + list(c.execute("SELECT * FROM frames ORDER BY source_id, frame"))
                + list(c.execute("SELECT * FROM faces ORDER BY source_id, frame, face"))
                + list(c.execute("SELECT * FROM tracks ORDER BY source_id, track"))
            )

    def tracks(self, source_id: int) -> list[tuple]:  # type: ignore[type-arg]
        """Tracker state rows (track, last_frame, box, embedding, embedding_frame, keep)."""
        with self._reading():
            return list(
                self.conn.execute(
                    "SELECT track, last_frame, box, embedding, embedding_frame, keep FROM tracks "
                    "WHERE source_id=? ORDER BY track",
                    (source_id,),
                )
            )
