"""The face set: aligned face PNGs plus one SQLite database - the contract between the stages.

Layout::

    FACESET/
      faceset.db        SQLite (WAL): meta, sources, frames, faces   (schema below)
      faces/*.png       aligned faces, size x size, at the stored coverage
      contact_sheet.png a grid of the faces, for people

Crash safety: a PNG is written to a temporary file and renamed into place *before* the
transaction that records it commits; frames are committed in batches together with the source's
``next_frame``. After a crash the database says exactly which frames are done, and redoing a
frame rewrites the same file name with the same bytes. So an interrupted extraction resumes to
the same database an uninterrupted one gives.

Schema versions: ``meta.schema_version``; opening a newer one than this code knows is refused with
the reason, an older one is migrated here (none yet: version 1 is the first).
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facetwin.errors import InputError, OutputError

SCHEMA_VERSION = 1
DB_NAME = "faceset.db"
FACES_DIR = "faces"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,              -- 'image' or 'video'
    width INTEGER, height INTEGER, fps REAL, frame_count INTEGER,
    next_frame INTEGER NOT NULL DEFAULT 0,   -- frames below this are committed
    status TEXT NOT NULL DEFAULT 'running'   -- 'running' | 'done'
);
CREATE TABLE IF NOT EXISTS frames (
    source_id INTEGER NOT NULL, frame INTEGER NOT NULL, faces INTEGER NOT NULL,
    PRIMARY KEY (source_id, frame)
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL, frame INTEGER NOT NULL, face INTEGER NOT NULL,
    file TEXT,                       -- aligned PNG under faces/, NULL for bridged faces
    box TEXT NOT NULL,               -- JSON [x0, y0, x1, y1], image pixels
    score REAL NOT NULL,
    landmarks BLOB NOT NULL,         -- float32 (68, 2) raw, image pixels
    landmarks_smooth BLOB,           -- float32 (68, 2) after bridging/smoothing (video)
    matrix BLOB NOT NULL,            -- float64 (2, 3) image -> aligned crop
    masks BLOB,                      -- grey PNG: 255 components, >= 128 extended
    embedding BLOB,                  -- float32 (128,)
    embedding_frame INTEGER,         -- frame the embedding was computed on (tracks reuse it)
    detector TEXT NOT NULL,
    blur REAL, yaw REAL, pitch REAL, roll REAL,
    track INTEGER,
    bridged INTEGER NOT NULL DEFAULT 0,
    UNIQUE (source_id, frame, face)
);
CREATE TABLE IF NOT EXISTS tracks (   -- tracker state, committed with the frames (resume)
    source_id INTEGER NOT NULL, track INTEGER NOT NULL,
    last_frame INTEGER NOT NULL, box TEXT NOT NULL,
    embedding BLOB, embedding_frame INTEGER, keep INTEGER NOT NULL,
    PRIMARY KEY (source_id, track)
);
CREATE INDEX IF NOT EXISTS faces_track ON faces (source_id, track, frame);
"""


@dataclass
class FaceRecord:
    """One face row. Arrays are decoded; ``file`` is relative to the face set's faces/ folder."""

    id: int
    source_id: int
    source: str
    frame: int
    face: int
    file: str | None
    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    landmarks_smooth: np.ndarray | None
    matrix: np.ndarray
    embedding: np.ndarray | None
    embedding_frame: int | None
    detector: str
    blur: float | None
    yaw: float | None
    pitch: float | None
    roll: float | None
    track: int | None
    bridged: bool

    @property
    def landmarks_aligned(self) -> np.ndarray:
        """Raw landmarks in aligned-crop pixels."""
        from facetwin.extract.align import transform_points

        return transform_points(self.landmarks, self.matrix).astype(np.float32)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; outputs are meant to be shared
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def encode_png(image: np.ndarray, rgb: bool = True) -> bytes:
    img = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if rgb and image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OutputError("PNG encoding failed")
    return buf.tobytes()


def _blob(a: np.ndarray | None, dtype: type) -> bytes | None:
    return None if a is None else np.ascontiguousarray(a, dtype=dtype).tobytes()


def _arr(b: bytes | None, dtype: type, shape: tuple[int, ...]) -> np.ndarray | None:
    return None if b is None else np.frombuffer(b, dtype=dtype).reshape(shape).copy()


class FaceSet:
    """A face set on disk. Use :meth:`create` or :meth:`open`; close with :meth:`close`."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        self.root = root
        self.conn = conn

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> FaceSet:
        root = Path(path)
        db = root / DB_NAME
        if not db.is_file():
            raise InputError(
                f"{root} is not a face set (no {DB_NAME}); make one with `facetwin extract`"
            )
        try:
            conn = sqlite3.connect(db)
            version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise InputError(f"{db} is not a readable face set database ({e})") from None
        if version is None or int(version[0]) > SCHEMA_VERSION:
            raise InputError(
                f"{root} has face set schema {version and version[0]}; this facetwin reads "
                f"up to {SCHEMA_VERSION} - upgrade facetwin"
            )
        return cls(root, conn)

    @classmethod
    def create(cls, path: str | os.PathLike[str], settings: dict[str, object]) -> FaceSet:
        """Open ``path`` for writing, creating it; an existing set must have the same settings."""
        root = Path(path)
        try:
            (root / FACES_DIR).mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(root / DB_NAME)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        except (OSError, sqlite3.OperationalError) as e:
            raise OutputError(f"cannot create face set at {root}: {e}") from None
        fs = cls(root, conn)
        old = fs.settings()
        if not old:
            with fs.transaction():
                conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
                conn.execute(
                    "INSERT INTO meta VALUES ('settings', ?)",
                    (json.dumps(settings, sort_keys=True),),
                )
        elif old != json.loads(json.dumps(settings)):
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            fs.close()
            from facetwin.errors import UsageError

            raise UsageError(
                f"{root} was extracted with other settings ({', '.join(diff)}); "
                "use a new output folder or the same options"
            )
        return fs

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> FaceSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with self.conn:
                yield self.conn
        except sqlite3.OperationalError as e:
            raise OutputError(f"cannot write face set {self.root}: {e}") from None

    # -- settings ------------------------------------------------------------------------------
    def settings(self) -> dict[str, object]:
        row = self.conn.execute("SELECT value FROM meta WHERE key='settings'").fetchone()
        return json.loads(row[0]) if row else {}

    @property
    def size(self) -> int:
        return int(self.settings().get("size", 256))  # type: ignore[call-overload]

    @property
    def coverage(self) -> float:
        return float(self.settings().get("coverage", 2.0))  # type: ignore[arg-type]

    # -- sources and progress ----------------------------------------------------------------
    def source(self, path: str) -> sqlite3.Row | None:
        self.conn.row_factory = sqlite3.Row
        try:
            return self.conn.execute("SELECT * FROM sources WHERE path=?", (path,)).fetchone()
        finally:
            self.conn.row_factory = None

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
        faces: Iterable[dict[str, object]],
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
            for row in faces:
                cols = ", ".join(row)
                c.execute(
                    f"INSERT OR REPLACE INTO faces ({cols}) VALUES ({', '.join('?' * len(row))})",
                    tuple(row.values()),
                )
            c.execute("UPDATE sources SET next_frame=? WHERE id=?", (next_frame, source_id))

    def finish_source(
        self, source_id: int, smooth: dict[int, np.ndarray], bridged: Iterable[dict[str, object]]
    ) -> None:
        """Store smoothed landmarks (face id -> (68, 2)) and bridged faces; mark the source done."""
        with self.transaction() as c:
            c.execute("DELETE FROM faces WHERE source_id=? AND bridged=1", (source_id,))
            c.executemany(
                "UPDATE faces SET landmarks_smooth=? WHERE id=?",
                [(_blob(v, np.float32), k) for k, v in smooth.items()],
            )
            for row in bridged:
                c.execute(
                    f"INSERT INTO faces ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    tuple(row.values()),
                )
            c.execute("UPDATE sources SET status='done' WHERE id=?", (source_id,))

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
        return [self._record(r) for r in self.conn.execute(sql, args)]

    @staticmethod
    def _record(r: tuple) -> FaceRecord:  # type: ignore[type-arg]
        return FaceRecord(
            id=r[0],
            source_id=r[1],
            source=r[2],
            frame=r[3],
            face=r[4],
            file=r[5],
            box=tuple(json.loads(r[6])),
            score=r[7],
            landmarks=_arr(r[8], np.float32, (68, 2)),  # type: ignore[arg-type]
            landmarks_smooth=_arr(r[9], np.float32, (68, 2)),
            matrix=_arr(r[10], np.float64, (2, 3)),  # type: ignore[arg-type]
            embedding=_arr(r[11], np.float32, (128,)),
            embedding_frame=r[12],
            detector=r[13],
            blur=r[14],
            yaw=r[15],
            pitch=r[16],
            roll=r[17],
            track=r[18],
            bridged=bool(r[19]),
        )

    def load_aligned(self, rec: FaceRecord) -> np.ndarray:
        """The aligned face as RGB uint8 (size, size, 3)."""
        if rec.file is None:
            raise InputError(f"face {rec.id} is a bridged face and has no image")
        path = self.root / FACES_DIR / rec.file
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"aligned face {path} is missing or unreadable")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def load_mask(self, rec: FaceRecord, kind: str = "components") -> np.ndarray:
        """uint8 (size, size) mask, 0/255, of kind 'components' or 'extended'."""
        row = self.conn.execute("SELECT masks FROM faces WHERE id=?", (rec.id,)).fetchone()
        if row is None or row[0] is None:
            raise InputError(f"face {rec.id} has no stored mask")
        img = cv2.imdecode(np.frombuffer(row[0], np.uint8), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise InputError(f"face {rec.id} has a corrupt mask")
        level = {"components": 255, "extended": 128}[kind]
        return np.where(img >= level, 255, 0).astype(np.uint8)

    def mean_embedding(self) -> np.ndarray | None:
        """Mean 128-D embedding of the set's faces (None when it has none)."""
        embs = [r.embedding for r in self.faces() if r.embedding is not None]
        return np.mean(embs, axis=0).astype(np.float32) if embs else None

    def counts(self) -> dict[str, int]:
        c = self.conn
        return {
            "faces": c.execute("SELECT COUNT(*) FROM faces WHERE bridged=0").fetchone()[0],
            "bridged": c.execute("SELECT COUNT(*) FROM faces WHERE bridged=1").fetchone()[0],
            "frames": c.execute("SELECT COUNT(*) FROM frames").fetchone()[0],
            "frames_with_faces": c.execute("SELECT COUNT(*) FROM frames WHERE faces>0").fetchone()[
                0
            ],
            "sources": c.execute("SELECT COUNT(*) FROM sources").fetchone()[0],
        }

    def dump(self) -> list[tuple]:  # type: ignore[type-arg]
        """Every stored row (sources, frames, faces) in a fixed order - for comparing two runs."""
        c = self.conn
        return (
            list(c.execute("SELECT * FROM sources ORDER BY id"))
            + list(c.execute("SELECT * FROM frames ORDER BY source_id, frame"))
            + list(c.execute("SELECT * FROM faces ORDER BY source_id, frame, face"))
            + list(c.execute("SELECT * FROM tracks ORDER BY source_id, track"))
        )

    def tracks(self, source_id: int) -> list[tuple]:  # type: ignore[type-arg]
        """Tracker state rows (track, last_frame, box, embedding, embedding_frame, keep)."""
        return list(
            self.conn.execute(
                "SELECT track, last_frame, box, embedding, embedding_frame, keep FROM tracks "
                "WHERE source_id=? ORDER BY track",
                (source_id,),
            )
        )
