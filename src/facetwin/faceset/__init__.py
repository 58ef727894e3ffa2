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
the reason, an older one is migrated in :mod:`.schema` (none yet: version 1 is the first).

Damaged and crafted face sets: every read goes through this class, which turns a damaged
database page (``sqlite3.DatabaseError``) and any stored value of the wrong type, length or shape
into an :class:`InputError` that names the face set, and refuses a face file name that would
lead outside ``faces/`` (``../../etc/passwd``, an absolute path, a symlink out of the folder).

Modules: :mod:`.schema` (tables, version, opening or creating the database), :mod:`.rows`
(:class:`FaceRecord`, :class:`FaceRow` and the value codecs), :mod:`.reads` (every read, checked)
and :mod:`.store` (:class:`FaceSet`: the reads plus extract's writes).
"""

from __future__ import annotations

from facetwin.faceset.rows import (
    DB_NAME,
    FACES_DIR,
    SCHEMA_VERSION,
    FaceRecord,
    FaceRow,
    encode_png,
    safe_face_file,
)
from facetwin.faceset.store import FaceSet

__all__ = [
    "DB_NAME",
    "FACES_DIR",
    "SCHEMA_VERSION",
    "FaceRecord",
    "FaceRow",
    "FaceSet",
    "encode_png",
    "safe_face_file",
]
