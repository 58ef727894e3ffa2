"""The model folder a run trains in: created if needed, locked against a second run, cleaned
of interrupted writes, and removed again if a new run fails before its first snapshot.

Only rank 0 writes, so only rank 0 holds the folder; a failed new run must leave nothing behind
(no empty folder, no config.json of a model that never existed), or the next attempt would
resume a run that has no snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from facetwin.errors import OutputError
from facetwin.lock import exclusive
from facetwin.media.files import make_folder
from facetwin.model_meta import SNAPSHOTS, latest_snapshot
from facetwin.train.config import CONFIG_FILE, LOSS_LOG, PREVIEW_FILE
from facetwin.train.snapshot_prune import remove_partial

# What a run writes into its model folder; a new folder whose run failed before its first
# snapshot loses these again (and the folder, if that leaves it empty).
RUN_FILES = (CONFIG_FILE, LOSS_LOG, PREVIEW_FILE, ".facetwin.lock")


@contextmanager
def hold_model_dir(model_dir: Path, main: bool) -> Iterator[None]:
    """The model folder, created if needed and locked against other runs for the ``with``
    block (on rank 0: the only one that writes). Leftovers of interrupted writes are removed
    under the lock; if the folder is new and the run fails before its first snapshot, what
    the run wrote and the folders it created are removed again."""

    if not main:
        yield
        return
    if model_dir.exists() and not model_dir.is_dir():
        raise OutputError(f"model folder {model_dir} is a file, not a folder")
    created = [d for d in (model_dir, *model_dir.parents) if not d.exists()]
    make_folder(model_dir, "model folder")
    ok = False
    try:
        with exclusive(model_dir, f"model folder {model_dir}"):
            remove_partial(model_dir)
            try:
                yield
                ok = True
            finally:
                if created and not ok and latest_snapshot(model_dir) is None:
                    remove_new_dir(model_dir, created)
    except BaseException:
        if created and not ok:  # e.g. the lock could not be taken: at least no empty folder
            rmdirs(created)
        raise


def remove_new_dir(model_dir: Path, created: list[Path]) -> None:
    """Undo a failed new run: its files, then every folder it created that is now empty."""
    for name in RUN_FILES:
        (model_dir / name).unlink(missing_ok=True)
    rmdirs([model_dir / SNAPSHOTS, *created])


def rmdirs(dirs: list[Path]) -> None:
    """Remove each folder of ``dirs`` (innermost first) that is empty; keep the rest."""
    for d in dirs:
        with suppress(OSError):  # not empty (someone else's files) or already gone
            d.rmdir()
