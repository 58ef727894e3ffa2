"""The face set store (:class:`FaceSet`): opening or creating one, and extract's crash-safe writes;
see :mod:`facetwin.faceset` for the layout and the guarantees.

Where things are: the reads (and the checks that turn a damaged set into an InputError) are
:class:`facetwin.faceset.reads.FaceSetReader`, which :class:`FaceSet` extends; the tables, the
schema version and making the database are :mod:`facetwin.faceset.schema`; the rows and their
value codecs are :mod:`facetwin.faceset.rows`. This module is what extract alone needs: a
transaction per batch of frames, so that a crash loses at most the frames since the last one.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from facetwin.errors import OutputError, UsageError
from facetwin.faceset.reads import FaceSetReader
from facetwin.faceset.rows import FACES_DIR, SCHEMA_VERSION, FaceRecord, FaceRow, as_blob
from facetwin.faceset.schema import check_version, connect_existing, create_database
from facetwin.media.files import atomic_write_bytes


class FaceSet(FaceSetReader):
    """A face set on disk. Use :meth:`create` or :meth:`open`; close with :meth:`close`."""

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> FaceSet:
        root = Path(path)
        return cls(root, connect_existing(root))

    @classmethod
    def create(cls, path: str | os.PathLike[str], settings: dict[str, object]) -> FaceSet:
        """Open ``path`` for writing, creating it; an existing set must have the same settings."""
        root = Path(path)
        fs = cls(root, create_database(root))
        try:
            old = fs.settings()
            if old:
                check_version(root, fs.conn)
        except BaseException:
            fs.close()
            raise
        if not old:
            fs._init_meta(settings)
        elif old != json.loads(json.dumps(settings)):
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            fs.close()
            raise UsageError(
                f"{root} was extracted with other settings ({', '.join(diff)}); "
                "use a new output folder or the same options"
            )
        return fs

    def _init_meta(self, settings: dict[str, object]) -> None:
        """A new set's schema version and extraction settings (what a resume must match)."""
        with self.transaction() as c:
            c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            c.execute(
                "INSERT INTO meta VALUES ('settings', ?)",
                (json.dumps(settings, sort_keys=True),),
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction. A full disk ("database or disk is full"), a read-only folder or
        any other failure to write is an OutputError; damaged pages are an InputError."""
        try:
            with self.conn:
                yield self.conn
        except sqlite3.OperationalError as e:
            raise OutputError(f"cannot write face set {self.root}: {e}") from None
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from None

    # -- writing -----------------------------------------------------------------------------
    def add_source(
        self,
        path: str,
        kind: str,
        width: int,
        height: int,
        fps: float | None,
        frame_count: int | None,
    ) -> int:
        row = self.source(path)
        if row is not None:
            return int(row["id"])
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO sources (path, kind, width, height, fps, frame_count) "
                "VALUES (?,?,?,?,?,?)",
                (path, kind, width, height, fps, frame_count),
            )
        return int(cur.lastrowid or 0)

    def face_file(self, source_id: int, stem: str, frame: int, face: int) -> str:
        return f"{source_id:03d}_{stem[:40]}_{frame:06d}_{face}.png"

    def write_png(self, name: str, data: bytes) -> None:
        atomic_write_bytes(self.root / FACES_DIR / name, data)

    def commit_frames(
        self,
        source_id: int,
        next_frame: int,
        frames: Iterable[tuple[int, int]],
        faces: Iterable[FaceRow],
        tracks: Iterable[tuple[object, ...]] = (),
    ) -> None:
        """Record processed frames, their faces and the tracker state, and advance the source,
        in one transaction."""
        with self.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO tracks VALUES (?,?,?,?,?,?,?)", list(tracks))
            c.executemany(
                "INSERT OR REPLACE INTO frames VALUES (?,?,?)",
                [(source_id, f, n) for f, n in frames],
            )
            # a frame redone after a crash rewrites its rows: replace, never duplicate
            _insert_faces(c, faces, "INSERT OR REPLACE")
            c.execute("UPDATE sources SET next_frame=? WHERE id=?", (next_frame, source_id))

    def finish_source(
        self, source_id: int, smooth: dict[int, np.ndarray], bridged: Iterable[FaceRow]
    ) -> None:
        """Store smoothed landmarks (face id -> (68, 2)) and bridged faces; mark the source done."""
        with self.transaction() as c:
            c.execute("DELETE FROM faces WHERE source_id=? AND bridged=1", (source_id,))
            c.executemany(
                "UPDATE faces SET landmarks_smooth=? WHERE id=?",
                [(as_blob(v, np.float32), k) for k, v in smooth.items()],
            )
            _insert_faces(c, bridged, "INSERT")
            c.execute("UPDATE sources SET status='done' WHERE id=?", (source_id,))

    # -- curating (the studio's sort tool and mask editor) ------------------------------------
    def delete_faces(self, ids: Iterable[int]) -> list[FaceRecord]:
        """Remove faces ``ids`` (rows and their frames' counts, one transaction); the records
        removed, so the caller can move their image files aside."""
        wanted = {int(i) for i in ids}
        doomed = [r for r in self.faces(include_bridged=True) if r.id in wanted]
        with self.transaction() as c:
            for r in doomed:
                c.execute("DELETE FROM faces WHERE id=?", (r.id,))
                c.execute(
                    "UPDATE frames SET faces=MAX(faces-1, 0) WHERE source_id=? AND frame=?",
                    (r.source_id, r.frame),
                )
        return doomed

    def set_mask(self, face_id: int, png: bytes) -> None:
        """Replace face ``face_id``'s stored masks by a grey PNG (255 = both kinds, the
        encoding :meth:`load_mask` reads)."""
        with self.transaction() as c:
            c.execute("UPDATE faces SET masks=? WHERE id=?", (png, int(face_id)))


def _insert_faces(c: sqlite3.Connection, faces: Iterable[FaceRow], verb: str) -> None:
    """``verb`` (INSERT, INSERT OR REPLACE) each face's columns into the faces table."""
    for face in faces:
        row = face.columns()
        c.execute(
            f"{verb} INTO faces ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
