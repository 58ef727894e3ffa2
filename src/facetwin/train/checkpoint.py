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

Pruning (:func:`prune`): the newest ``keep`` snapshots taken on the iteration interval are kept,
plus the newest snapshot of all (one written by time or at a stop); older time and stop
snapshots go, so frequent time-triggered saves never push the interval snapshots out.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as st_load_file
from safetensors.torch import save_file as st_save_file

from facetwin.device import resolve_device
from facetwin.errors import InputError, ModelMismatchError, OutputError
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

log = logging.getLogger(__name__)

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


# -- optimizer state <-> (tensors, JSON) -------------------------------------------------------
def flatten_optimizer(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and JSON-able scalars.

    Per-parameter tensors with at least one dimension go to safetensors as
    ``state.<param index>.<name>``; 0-d tensors (Adam's ``step``) and plain numbers go to JSON
    with their dtype, so they come back bit-exact.
    """
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in state["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value) and value.ndim > 0:
                tensors[f"state.{pid}.{name}"] = value.detach().cpu().contiguous()
            elif torch.is_tensor(value):
                dtype = str(value.dtype).removeprefix("torch.")
                scalars.setdefault(str(pid), {})[name] = {"tensor": value.item(), "dtype": dtype}
            else:
                scalars.setdefault(str(pid), {})[name] = {"value": value}
    groups = json.loads(json.dumps(state["param_groups"]))
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer(
    tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, entries in meta["scalars"].items():
        for name, v in entries.items():
            state.setdefault(int(pid), {})[name] = (
                torch.tensor(v["tensor"], dtype=getattr(torch, v["dtype"]))
                if "tensor" in v
                else v["value"]
            )
    groups = [dict(g) for g in meta["param_groups"]]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


# -- RNG states as JSON ------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """torch's CPU (and CUDA) generator states, base64, plus numpy's legacy global state.

    The training data does not draw from any of these (it derives a Generator per iteration),
    so they are recorded for anything else a plugin might draw, e.g. dropout.
    """
    out: dict[str, Any] = {
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [
            base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()
        ]
    name, keys, pos, has_gauss, gauss = cast(tuple, np.random.get_state(legacy=True))
    out["numpy"] = [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)]
    return out


def set_rng_state(state: Mapping[str, Any]) -> None:
    def tensor(b64: str) -> torch.Tensor:
        return torch.from_numpy(np.frombuffer(base64.b64decode(b64), np.uint8).copy())

    if "torch" in state:
        torch.set_rng_state(tensor(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensor(s) for s in state["cuda"]])
    if "numpy" in state:
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, np.array(keys, np.uint32), pos, has_gauss, gauss))


# -- writing -----------------------------------------------------------------------------------
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
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
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        opt_tensors, opt_meta = flatten_optimizer(optimizer.state_dict())
        extra = [
            (aux_file(k), {n: t.detach().cpu().contiguous() for n, t in v.items()})
            for k, v in (aux or {}).items()
        ]
        files = _write_tensor_files(tmp, [(MODEL_FILE, weights), (OPTIM_FILE, opt_tensors), *extra])
        doc = {
            "format": FORMAT,
            "version": VERSION,
            **state,
            "iteration": iteration,
            "model_id": files[MODEL_FILE]["sha256"][:12],
            "files": files,
            "optimizer": opt_meta,
            "rng": rng_state(),
        }
        _write(tmp / STATE_FILE, json.dumps(doc, indent=1).encode())
        _fsync_dir(tmp)
        _swap_in(tmp, final, old)
    except (OSError, SafetensorError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        prev = latest_snapshot(Path(model_dir))
        kept = f"{prev.name} is kept" if prev is not None else "no earlier snapshot"
        raise OutputError(
            f"cannot write snapshot {final}: {write_error(e)}; {kept} - free space or fix "
            "the folder and run the same command to resume"
        ) from None
    shutil.rmtree(old, ignore_errors=True)
    prune(Path(model_dir), keep)
    return final


def _write_tensor_files(
    folder: Path, files: list[tuple[str, Mapping[str, torch.Tensor]]]
) -> dict[str, dict[str, Any]]:
    """Each (name, tensors) as a safetensors file in ``folder``, synced; their sha256 and size.
    Straight to the file (no 1 GB bytes object for original's Adam state), then hashed back
    from the page cache."""
    out: dict[str, dict[str, Any]] = {}
    for name, tensors in files:
        st_save_file(dict(tensors), str(folder / name), metadata={"format": FORMAT})
        out[name] = {"sha256": _sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
        _fsync_file(folder / name)
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
    _fsync_dir(final.parent)


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


# -- reading -----------------------------------------------------------------------------------


def read_tensors(snapshot: Path, name: str, doc: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Load one tensor file of a snapshot after checking its size and sha256."""
    path = Path(snapshot) / name
    want = doc.get("files", {}).get(name, {})
    try:
        digest = _sha256_file(path)
    except OSError as e:
        raise InputError(f"checkpoint file {path} is unreadable ({e.strerror or e})") from None
    if digest != want.get("sha256"):
        raise InputError(
            f"checkpoint file {path} is corrupt (checksum mismatch); delete {Path(snapshot).name} "
            "to fall back to an older snapshot"
        )
    try:
        return st_load_file(str(path))
    except (SafetensorError, ValueError, OSError) as e:
        raise InputError(f"checkpoint file {path} is not valid safetensors ({e})") from None


def aux_file(name: str) -> str:
    return f"aux-{name}.safetensors"


def read_aux(snapshot: Path, doc: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """The ``aux`` tensor files ``names`` of a snapshot (checked like the model's);
    ModelMismatchError if one is missing (e.g. a snapshot of a plain-L1 run)."""
    out = {}
    for name in names:
        if aux_file(name) not in doc.get("files", {}):
            raise ModelMismatchError(f"snapshot {snapshot} has no {name} state to resume from")
        out[name] = read_tensors(snapshot, aux_file(name), doc)
    return out


def check_fits(weights: Mapping[str, torch.Tensor], model: torch.nn.Module, what: str) -> None:
    """ModelMismatchError naming the first disagreement between ``weights`` and ``model``."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in weights.items()}
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or extra:
        key = (missing or extra)[0]
        raise ModelMismatchError(
            f"{what} does not fit this architecture ({'missing' if missing else 'unexpected'} "
            f"tensor {key})"
        )
    for k, shape in want.items():
        if got[k] != shape:
            raise ModelMismatchError(
                f"{what} does not fit this architecture ({k} is {list(got[k])}, "
                f"expected {list(shape)})"
            )


def load_snapshot(
    snapshot: Path,
    model: torch.nn.Module,
    arch: str,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Load weights (and optimizer state) of ``snapshot`` into ``model``; return state.json.

    ModelMismatchError if the snapshot was made by another architecture; InputError if damaged.
    """
    doc = read_state(snapshot)
    if doc.get("arch") != arch:
        raise ModelMismatchError(
            f"snapshot {snapshot} holds a {doc.get('arch')!r} model, not {arch!r}"
        )
    weights = read_tensors(snapshot, MODEL_FILE, doc)
    check_fits(weights, model, f"snapshot {snapshot}")
    model.load_state_dict(weights)
    if optimizer is not None:
        tensors = read_tensors(snapshot, OPTIM_FILE, doc)
        load_optimizer(optimizer, tensors, doc["optimizer"], f"optimizer state of {snapshot}")
    return doc


def load_optimizer(
    optimizer: torch.optim.Optimizer,
    tensors: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    what: str,
) -> None:
    """Load a flattened optimizer state (see :func:`flatten_optimizer`) into ``optimizer``, its
    moments in the parameters' memory layout; ModelMismatchError naming ``what`` if it does not
    fit."""
    try:
        optimizer.load_state_dict(unflatten_optimizer(tensors, meta))
    except (ValueError, KeyError, RuntimeError) as e:
        raise ModelMismatchError(f"{what} does not fit ({e})") from None
    match_layout(optimizer)


def match_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give each per-parameter state tensor its parameter's memory layout.

    Snapshots store contiguous (NCHW) tensors; ``load_state_dict`` restores device and dtype but
    not strides, and the fused Adam kernels refuse channels_last parameters whose moments are
    NCHW ("params, grads, exp_avgs ... must have same dtype, device, and layout"; found on a
    CUDA resume).
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            for k, v in state.items():
                if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                    state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def load_model(
    model_dir: str | os.PathLike[str], device: str = "auto"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The newest trained model of ``model_dir`` (or a snapshot dir), in eval mode on ``device``.

    ``meta`` tells the convert stage how to feed it: arch, input_size, output_size, coverage,
    model_id (short sha256 of the weights file, for labelling outputs), iteration, snapshot and
    identities ({"a"/"b": {"faceset", "faces", "mean_embedding"}} as recorded at training time).
    """
    from facetwin.train.models import arch_info, build_model

    snap = find_snapshot(Path(model_dir))
    doc = read_state(snap)
    arch = str(doc.get("arch"))
    info = arch_info(arch)  # UsageError if this facetwin lacks the architecture
    model = build_model(arch)
    load_snapshot(snap, model, arch)
    model.to(torch.device(resolve_device(device))).eval()
    config = doc.get("config", {})
    meta = {
        "arch": arch,
        "input_size": info.input_size,
        "output_size": info.output_size,
        "coverage": float(config.get("coverage") or info.default_coverage),
        "model_id": doc["model_id"],
        "iteration": int(doc["iteration"]),
        "snapshot": str(snap),
        "identities": doc.get("identities", {}),
        "config": config,
    }
    return model, meta
