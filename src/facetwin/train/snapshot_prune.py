"""Which snapshots stay on disk: pruning by why each was written, and the removal of what
interrupted writes left behind.

The newest ``keep`` snapshots taken on the iteration interval are kept, plus the newest
snapshot of all (one written by time or at a stop); older time and stop snapshots go, so
frequent time-triggered saves never push the interval snapshots out.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from facetwin.model_meta import SNAPSHOTS, STATE_FILE, list_snapshots
from facetwin.train.snapshot_io import REASONS, TEMP_PREFIX


def snapshot_reason(snapshot: Path) -> str:
    """Why ``snapshot`` was written (see :data:`REASONS`); "interval" if not recorded."""
    try:
        reason = json.loads((Path(snapshot) / STATE_FILE).read_text()).get("reason")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return "interval"
    return reason if reason in REASONS else "interval"


def prune(model_dir: Path, keep: int) -> list[Path]:
    """Remove all snapshots but the newest ``keep`` interval ones and the newest of all.

    Returns the snapshots removed.
    """
    snaps = list_snapshots(model_dir)
    if not snaps:
        return []
    interval = [s for s in snaps if snapshot_reason(s) == "interval"]
    kept = set(interval[-keep:] if keep > 0 else []) | {snaps[-1]}
    gone = [s for s in snaps if s not in kept]
    for s in gone:
        shutil.rmtree(s, ignore_errors=True)
    return gone


def remove_partial(model_dir: Path) -> list[Path]:
    """Remove what interrupted writes left in ``model_dir``: temporary snapshot folders and
    temporary files. Only call it while holding the model folder's lock (another live run's
    temporary folder looks the same). Returns what was removed."""
    found = [*Path(model_dir).glob(f"{TEMP_PREFIX}*")]
    found += [*(Path(model_dir) / SNAPSHOTS).glob(f"{TEMP_PREFIX}*")]
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found
