"""The file level of a snapshot that writing, reading and pruning share: its file names,
checksums, durable writes and the one-line reason for a failed write.

Apart from :mod:`facetwin.train.checkpoint` so that the reader
(:mod:`facetwin.train.snapshot_read`) and the pruner (:mod:`facetwin.train.snapshot_prune`)
need none of the writer's machinery.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from pathlib import Path

MODEL_FILE = "model.safetensors"
OPTIM_FILE = "optimizer.safetensors"
TEMP_PREFIX = ".tmp-"
#: Why a snapshot was written (``state.json`` "reason"): on the --save-every interval, because
#: --save-minutes passed, or at a stop (end of run, --minutes, Ctrl-C). Older snapshots have none
#: and count as interval ones.
REASONS = ("interval", "time", "stop")
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def snapshot_name(iteration: int) -> str:
    return f"it-{iteration:08d}"


def aux_file(name: str) -> str:
    """The file of a step's extra tensors ``name`` (e.g. the GAN's discriminators)."""
    return f"aux-{name}.safetensors"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_synced(path: Path, data: bytes) -> None:
    """``data`` to ``path``, on the disk before this returns (the rename that follows must not
    publish a file whose bytes are still only in the page cache)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform (Windows): the rename is still atomic
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_error(e: BaseException) -> str:
    """A short reason for a failed write, from an OSError or safetensors' own error type (which
    carries the OS error only in its text: "... No space left on device (os error 28)")."""
    code = e.errno if isinstance(e, OSError) else None
    if code is None and (m := _OS_ERROR.search(str(e))):
        code = int(m.group(1))
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full ({os.strerror(code)})"
    if code is not None:
        return os.strerror(code)
    text = str(e).removeprefix("Error while serializing: ").strip()
    return text.splitlines()[0] if text else type(e).__name__
