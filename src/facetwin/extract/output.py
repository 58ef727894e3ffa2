"""What an extraction leaves in its output folder besides the faces: the contact sheet, and the
removal of a face set this run created but stored no face in.

Separate from the Extractor (:mod:`facetwin.extract.pipeline`) because both act on the face set
as a whole, after the loops (or instead of their result): the contact sheet is for people, and
a run that found nothing (no face, an unreadable input, a full disk) must not leave behind a
folder that looks like a face set but holds no face.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

import numpy as np

from facetwin.faceset import DB_NAME, FACES_DIR, FaceSet, encode_png
from facetwin.lock import lock_path_for
from facetwin.media.files import atomic_write_bytes
from facetwin.media.image import contact_sheet

log = logging.getLogger(__name__)

CONTACT_SHEET = "contact_sheet.png"


def write_contact_sheet(fs: FaceSet, max_faces: int = 100) -> Path:
    """A PNG grid of up to ``max_faces`` faces spread evenly through the set."""
    recs = fs.faces()
    if len(recs) > max_faces:
        recs = [recs[i] for i in np.linspace(0, len(recs) - 1, max_faces).round().astype(int)]
    sheet = contact_sheet([fs.load_aligned(r) for r in recs])
    path = fs.root / CONTACT_SHEET
    atomic_write_bytes(path, encode_png(sheet))
    return path


def stored_faces(root: Path) -> int:
    """Faces committed to the face set at ``root`` (0 when there is none or it cannot be read)."""
    try:
        with FaceSet.open(root) as fs:
            return fs.counts()["faces"]
    except Exception:  # noqa: BLE001 - an unreadable new set holds nothing worth keeping
        return 0


def discard_empty(root: Path, made_dir: bool, had_faces_dir: bool) -> None:
    """Remove what this run created of a face set that holds no face: the database, the faces
    folder (unless it was there before), the contact sheet, and the folder if this run made it."""
    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", CONTACT_SHEET):
        with contextlib.suppress(OSError):
            (root / name).unlink(missing_ok=True)
    if not had_faces_dir:
        shutil.rmtree(root / FACES_DIR, ignore_errors=True)
    if made_dir:
        with contextlib.suppress(OSError):
            lock_path_for(root).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            root.rmdir()
    log.debug("removed the empty face set %s this run had created", root)
