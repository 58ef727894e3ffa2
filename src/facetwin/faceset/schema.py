"""The face set's database schema: its tables, its version, and opening or creating it.

Separate from the rows (:mod:`facetwin.faceset.rows`: how one face is encoded and decoded) and
from the reads and writes (:mod:`facetwin.faceset.reads`, :mod:`facetwin.faceset.store`)
because this is what changes when the layout on disk changes: a new schema version bumps
:data:`SCHEMA_VERSION`, and the migration of older sets belongs here, beside
:func:`check_version` (none yet: version 1 is the first). A set written by a newer facetwin is
refused with the reason rather than misread.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from facetwin.errors import InputError, OutputError

SCHEMA_VERSION = 1
DB_NAME = "faceset.db"
FACES_DIR = "faces"

SCHEMA = """
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
    masks BLOB,                      -- grey PNG: 255 components, >=128 extended, 64/32 cut
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


def not_readable(db: Path, e: Exception) -> InputError:
    """The error for a file that is not (or no longer) an SQLite face set database."""
    return InputError(f"{db} is not a readable face set database ({e})")


def check_version(root: Path, conn: sqlite3.Connection) -> None:
    """InputError unless the set's schema version is one this code reads."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.DatabaseError as e:
        raise not_readable(root / DB_NAME, e) from None
    value = row[0] if row else None
    try:
        version = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(
            f"{root} is not a usable face set: its schema version is {value!r}, not a number"
        ) from None
    if version > SCHEMA_VERSION:
        raise InputError(
            f"{root} has face set schema {version}; this facetwin reads "
            f"up to {SCHEMA_VERSION} - upgrade facetwin"
        )


def connect_existing(root: Path) -> sqlite3.Connection:
    """A connection to the face set at ``root``, whose schema version this code reads."""
    db = root / DB_NAME
    if not db.is_file():
        raise InputError(
            f"{root} is not a face set (no {DB_NAME}); make one with `facetwin extract`"
        )
    try:
        conn = sqlite3.connect(db)
    except sqlite3.DatabaseError as e:
        raise not_readable(db, e) from None
    try:
        check_version(root, conn)
    except BaseException:
        conn.close()
        raise
    return conn


def create_database(root: Path) -> sqlite3.Connection:
    """A connection to ``root``'s database, made with its faces folder and tables if missing.

    WAL with synchronous=NORMAL: a commit survives a crash of the process (what resume needs)
    and costs no fsync per batch of frames.
    """
    conn: sqlite3.Connection | None = None
    try:
        (root / FACES_DIR).mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(root / DB_NAME)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
    except (OSError, sqlite3.OperationalError) as e:
        if conn is not None:
            conn.close()
        raise OutputError(f"cannot create face set at {root}: {e}") from None
    except sqlite3.DatabaseError as e:  # not a database, or damaged pages
        if conn is not None:
            conn.close()
        raise not_readable(root / DB_NAME, e) from None
    return conn
