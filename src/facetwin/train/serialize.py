"""Optimizer and RNG state as safetensors-ready tensors plus JSON, never pickle.

``torch.save`` would be the short way, but a pickled checkpoint from someone else can run code;
these helpers split each state into plain tensors (for safetensors) and JSON scalars that come
back bit-exact, so a snapshot (:mod:`facetwin.train.checkpoint`) holds no pickle at all.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import torch


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
    """Inverse of :func:`rng_state`; a generator missing from ``state`` is left as it is."""

    def tensor(b64: str) -> torch.Tensor:
        return torch.from_numpy(np.frombuffer(base64.b64decode(b64), np.uint8).copy())

    if "torch" in state:
        torch.set_rng_state(tensor(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensor(s) for s in state["cuda"]])
    if "numpy" in state:
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, np.array(keys, np.uint32), pos, has_gauss, gauss))


__all__ = ["flatten_optimizer", "rng_state", "set_rng_state", "unflatten_optimizer"]
