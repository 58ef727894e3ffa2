"""The one way facetwin writes a file: atomically, with one clear error when it cannot."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from facetwin.errors import OutputError


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    Any OS error (disk full, read-only or missing folder, permissions) is an OutputError, and
    the temporary file is removed. ``fsync`` also forces the bytes to the disk before the
    rename (a labelled output must survive a power cut whole; a face PNG can be redone).
    """
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; outputs are meant to be shared
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def make_folder(folder: Path, what: str = "") -> None:
    """Create ``folder`` and its parents; an OutputError (exit 5) naming ``what`` ("model
    folder", "output folder") when it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        name = f"{what} {folder}" if what else str(folder)
        raise OutputError(f"cannot create {name}: {e.strerror or e}") from None
