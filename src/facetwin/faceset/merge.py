"""Merging a face set made elsewhere (a shard) into another: how parallel extraction keeps one
writer per face set.

Workers of a distributed extraction (``extract/on_ray.py``) each extract their inputs into a
private shard with the very same settings; the driver, the face set's only writer, merges the
finished shards in input order. A merged source gets the id the next source of a single-process
run would get, its faces keep their order, and their image files are renamed to that id, so
the merged set is the one a single process makes, row for row.

Crash safety: the face images are linked (or copied) into place first, each atomically; the
rows then land in one transaction. A crash before it leaves image files no row names yet, which
the rerun of the same merge overwrites; after it, the source is done and is not merged again.
"""

from __future__ import annotations

import os
import shutil
import sqlite3

from facetwin.faceset.reads import FaceSetReader
from facetwin.faceset.schema import FACES_DIR
from facetwin.faceset.store import FaceSet

#: A source's columns but its id (the merge gives the target's).
_SOURCE_COLUMNS = ("path", "kind", "width", "height", "fps", "frame_count", "next_frame", "status")


def renamed(file: str, source_id: int) -> str:
    """A face image's name under another source id (names start ``<id:03d>_``)."""
    return f"{source_id:03d}_{file.split('_', 1)[1]}"


def _face_columns(conn: sqlite3.Connection) -> list[str]:
    return [r[1] for r in conn.execute("PRAGMA table_info(faces)") if r[1] != "id"]


def _place_file(src: str, dst: str) -> None:
    """``dst`` becomes a copy of ``src``, atomically: a hard link where the file system allows
    (shards live inside the face set's folder), else a copy."""
    tmp = f"{dst}.tmp-merge"
    if os.path.exists(tmp):
        os.remove(tmp)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _next_source_id(target: FaceSet, path: str) -> int:
    """The id ``path`` has in ``target`` (a source a run left unfinished is replaced), else the
    id SQLite will give the next source."""
    row = target.conn.execute("SELECT id FROM sources WHERE path=?", (path,)).fetchone()
    if row is not None:
        return int(row[0])
    top = target.conn.execute("SELECT MAX(id) FROM sources").fetchone()[0]
    return int(top or 0) + 1


def merge_source(target: FaceSet, shard: FaceSetReader, shard_id: int) -> int:
    """Copy source ``shard_id`` of ``shard`` with its frames, faces and tracker state into
    ``target``; the source's id there."""
    sc = shard.conn
    src = sc.execute(
        f"SELECT {', '.join(_SOURCE_COLUMNS)} FROM sources WHERE id=?", (shard_id,)
    ).fetchone()
    sid = _next_source_id(target, src[0])
    cols = _face_columns(sc)
    faces = [dict(zip(cols, r)) for r in sc.execute(
        f"SELECT {', '.join(cols)} FROM faces WHERE source_id=? ORDER BY id", (shard_id,)
    )]  # fmt: skip
    for face in faces:
        if face["file"]:
            new = renamed(face["file"], sid)
            _place_file(
                str(shard.root / FACES_DIR / face["file"]), str(target.root / FACES_DIR / new)
            )
            face["file"] = new
        face["source_id"] = sid
    frames = sc.execute("SELECT frame, faces FROM frames WHERE source_id=?", (shard_id,)).fetchall()
    tracks = sc.execute(
        "SELECT track, last_frame, box, embedding, embedding_frame, keep FROM tracks "
        "WHERE source_id=?",
        (shard_id,),
    ).fetchall()
    with target.transaction() as c:
        for table in ("frames", "faces", "tracks"):
            c.execute(f"DELETE FROM {table} WHERE source_id=?", (sid,))
        c.execute("DELETE FROM sources WHERE id=?", (sid,))
        c.execute(
            f"INSERT INTO sources (id, {', '.join(_SOURCE_COLUMNS)}) "
            f"VALUES ({', '.join('?' * (len(_SOURCE_COLUMNS) + 1))})",
            (sid, *src),
        )
        c.executemany("INSERT INTO frames VALUES (?,?,?)", [(sid, *f) for f in frames])
        c.executemany(
            f"INSERT INTO faces ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [tuple(f[k] for k in cols) for f in faces],
        )
        c.executemany("INSERT INTO tracks VALUES (?,?,?,?,?,?,?)", [(sid, *t) for t in tracks])
    return sid


def merge_into(target: FaceSet, shard: FaceSetReader) -> list[int]:
    """Merge every finished source of ``shard``, in its order, into ``target``; their ids."""
    ids = [
        int(r[0])
        for r in shard.conn.execute("SELECT id FROM sources WHERE status='done' ORDER BY id")
    ]
    return [merge_source(target, shard, i) for i in ids]


__all__ = ["merge_into", "merge_source", "renamed"]
