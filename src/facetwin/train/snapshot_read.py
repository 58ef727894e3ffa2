"""Reading a snapshot back: its tensor files checked against the sha256 in ``state.json``,
weights checked against the architecture before they are loaded, and the newest trained model
of a folder for the convert stage.

Every failure is one clear error: a damaged file is an InputError (with the way out: delete the
snapshot to fall back to an older one), a snapshot of another architecture or shape a
ModelMismatchError naming the first tensor that disagrees.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as st_load_file

from facetwin.device import resolve_device
from facetwin.errors import InputError, ModelMismatchError
from facetwin.model_meta import find_snapshot, read_state
from facetwin.train.serialize import unflatten_optimizer
from facetwin.train.snapshot_io import MODEL_FILE, OPTIM_FILE, aux_file, sha256_file


def read_tensors(snapshot: Path, name: str, doc: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Load one tensor file of a snapshot after checking its size and sha256."""
    path = Path(snapshot) / name
    want = doc.get("files", {}).get(name, {})
    try:
        digest = sha256_file(path)
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
