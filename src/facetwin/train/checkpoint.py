"""Snapshots of a training run: safetensors for tensors, JSON for everything else, never pickle.

Layout::

    MODEL_DIR/
      config.json                   the TrainConfig the run was started with
      loss.jsonl                    one line per logged iteration
      preview.png                   latest preview grid
      snapshots/it-00001000/        one complete snapshot per directory
        model.safetensors           model weights
        optimizer.safetensors       optimizer tensors (Adam moments), keyed state.<param>.<name>
        state.json                  iteration, architecture, config, optimizer scalars and
                                    param groups, RNG states, sha256 of both tensor files

A snapshot is written into a temporary directory and renamed into place, so a crash (even
``kill -9``) leaves either the complete snapshot or none; leftovers of an interrupted write are
removed by :func:`remove_partial` when the next run starts (under the model folder's lock, so
never another live run's). A failed write (disk full, quota, permissions) is an OutputError
that removes its temporary directory and leaves every earlier snapshot as it was. pickle is never
used: a checkpoint from someone else cannot run code. The sha256 in state.json catches a damaged
file before its garbage reaches the weights.

This module writes; the parts live beside it and are re-exported here, so
``facetwin.train.checkpoint`` stays the one name to import: the state codecs
(:mod:`~facetwin.train.serialize`), the shared file helpers (:mod:`~facetwin.train.snapshot_io`),
reading (:mod:`~facetwin.train.snapshot_read`) and pruning (:mod:`~facetwin.train.snapshot_prune`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file as st_save_file

from facetwin.errors import OutputError
from facetwin.model_meta import (
    FORMAT,
    SNAPSHOTS,
    STATE_FILE,
    VERSION,
    find_snapshot,
    latest_snapshot,
    list_snapshots,
    read_state,
)
from facetwin.train.serialize import (
    flatten_optimizer,
    rng_state,
    set_rng_state,
    unflatten_optimizer,
)
from facetwin.train.snapshot_io import (
    MODEL_FILE,
    OPTIM_FILE,
    REASONS,
    TEMP_PREFIX,
    aux_file,
    fsync_dir,
    fsync_file,
    sha256_file,
    snapshot_name,
    write_error,
    write_synced,
)
from facetwin.train.snapshot_prune import prune, remove_partial, snapshot_reason
from facetwin.train.snapshot_read import (
    check_fits,
    load_model,
    load_optimizer,
    load_snapshot,
    match_layout,
    read_aux,
    read_tensors,
)

log = logging.getLogger(__name__)

TensorFiles = list[tuple[str, Mapping[str, torch.Tensor]]]


def save_snapshot(
    model_dir: Path,
    iteration: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    keep: int,
    aux: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
) -> Path:
    """Write snapshot ``iteration`` atomically, then :func:`prune` to ``keep``.

    ``state`` holds the JSON part (arch, config, losses, reason, ...); this adds the iteration,
    the optimizer scalars, RNG states and checksums. ``aux`` adds further tensor files, one per
    name (``aux-NAME.safetensors``: the GAN's discriminators and their optimizer), read back
    with :func:`read_aux`.

    Any failure to write (disk full, quota, permissions; safetensors' error included) is an
    OutputError: the temporary directory is removed and the snapshots already there are kept,
    so the run resumes from the newest of them once the cause is fixed.
    """
    root = Path(model_dir) / SNAPSHOTS
    final = root / snapshot_name(iteration)
    tmp = root / f"{TEMP_PREFIX}{snapshot_name(iteration)}-{os.getpid()}"
    old = root / f"{TEMP_PREFIX}old-{snapshot_name(iteration)}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # ours: a leftover of this pid's earlier try
        tmp.mkdir()
        opt_tensors, opt_meta = flatten_optimizer(optimizer.state_dict())
        files = _write_tensor_files(tmp, _tensor_files(model, opt_tensors, aux))
        doc = _state_doc(state, iteration, files, opt_meta)
        write_synced(tmp / STATE_FILE, json.dumps(doc, indent=1).encode())
        fsync_dir(tmp)
        _swap_in(tmp, final, old)
    except (OSError, SafetensorError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_failed(Path(model_dir), final, e) from None
    shutil.rmtree(old, ignore_errors=True)
    prune(Path(model_dir), keep)
    return final


def _tensor_files(
    model: torch.nn.Module,
    opt_tensors: Mapping[str, torch.Tensor],
    aux: Mapping[str, Mapping[str, torch.Tensor]] | None,
) -> TensorFiles:
    """(file name, tensors) of a snapshot: the weights, the optimizer's moments, each aux set;
    on the CPU and contiguous, as safetensors needs them."""
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    extra = [
        (aux_file(k), {n: t.detach().cpu().contiguous() for n, t in v.items()})
        for k, v in (aux or {}).items()
    ]
    return [(MODEL_FILE, weights), (OPTIM_FILE, opt_tensors), *extra]


def _state_doc(
    state: Mapping[str, Any],
    iteration: int,
    files: Mapping[str, Any],
    opt_meta: Mapping[str, Any],
) -> dict[str, Any]:
    """``state.json``: the caller's state plus what makes the snapshot self-describing and
    checkable (format, iteration, checksums, optimizer scalars, RNG states)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        **state,
        "iteration": iteration,
        "model_id": files[MODEL_FILE]["sha256"][:12],
        "files": files,
        "optimizer": opt_meta,
        "rng": rng_state(),
    }


def _write_failed(model_dir: Path, final: Path, e: BaseException) -> OutputError:
    """The one line a failed snapshot write ends the run with: why, and what is kept."""
    prev = latest_snapshot(model_dir)
    kept = f"{prev.name} is kept" if prev is not None else "no earlier snapshot"
    return OutputError(
        f"cannot write snapshot {final}: {write_error(e)}; {kept} - free space or fix "
        "the folder and run the same command to resume"
    )


def _write_tensor_files(folder: Path, files: TensorFiles) -> dict[str, dict[str, Any]]:
    """Each (name, tensors) as a safetensors file in ``folder``, synced; their sha256 and size.
    Straight to the file (no 1 GB bytes object for original's Adam state), then hashed back
    from the page cache."""
    out: dict[str, dict[str, Any]] = {}
    for name, tensors in files:
        st_save_file(dict(tensors), str(folder / name), metadata={"format": FORMAT})
        out[name] = {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
        fsync_file(folder / name)
    return out


def _swap_in(tmp: Path, final: Path, old: Path) -> None:
    """Rename the finished ``tmp`` to ``final``; a snapshot of the same iteration already there
    moves aside to ``old`` first and comes back if the rename fails."""
    if final.exists():
        os.replace(final, old)
    try:
        os.replace(tmp, final)
    except OSError:
        if old.exists() and not final.exists():
            os.replace(old, final)
        raise
    fsync_dir(final.parent)


__all__ = [
    "FORMAT",
    "MODEL_FILE",
    "OPTIM_FILE",
    "REASONS",
    "SNAPSHOTS",
    "STATE_FILE",
    "TEMP_PREFIX",
    "VERSION",
    "aux_file",
    "check_fits",
    "find_snapshot",
    "flatten_optimizer",
    "latest_snapshot",
    "list_snapshots",
    "load_model",
    "load_optimizer",
    "load_snapshot",
    "match_layout",
    "prune",
    "read_aux",
    "read_state",
    "read_tensors",
    "remove_partial",
    "rng_state",
    "save_snapshot",
    "set_rng_state",
    "snapshot_name",
    "snapshot_reason",
    "unflatten_optimizer",
    "write_error",
]
