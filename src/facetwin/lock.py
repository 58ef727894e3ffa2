"""One writer per output: an advisory lock held while a command writes a face set, a model
folder or a converted file.

Why ``flock`` rather than a PID file: the kernel drops the lock when its process dies, even by
``kill -9``, so a stale lock from a killed run never blocks the next one and nothing has to
guess whether a recorded PID is still alive. The PID written into the lock file is only for the
message a second writer sees.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facetwin.errors import BusyError, OutputError

log = logging.getLogger(__name__)

try:  # POSIX; on other systems writers are not locked (logged once per lock)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def lock_path_for(target: Path) -> Path:
    """Where the lock of ``target`` lives: inside an existing folder, beside anything else.

    Callers that write a folder create it before locking, so every run of one command finds
    the same lock file (a rule based on the name, such as "has a suffix", split ``out.fs``).
    """
    if target.is_dir():
        return target / ".facetwin.lock"
    return target.with_name(f".{target.name}.lock")


@contextmanager
def exclusive(target: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold ``target``'s lock for the ``with`` block, or raise :class:`BusyError` at once.

    ``what`` names the output in the message ("face set out/a", "model folder m").
    """
    path = lock_path_for(Path(target))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise OutputError(f"cannot write {path.parent}: {e.strerror or e}") from None
    try:
        if fcntl is None:  # pragma: no cover
            log.debug("no file locking on this system; %s is not protected", what)
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise BusyError(
                    f"{what} is in use by process {pid}; wait for it to finish or stop it"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock; the file stays (removing it would race)
