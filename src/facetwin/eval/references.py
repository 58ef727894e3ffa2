"""Where the identities A and B come from: face sets, a model's meta JSON, or nothing.

The mean 128-D embedding of a person is what "nearer to B than to A" is measured against. Face
sets give it directly (``FaceSet.mean_embedding``). A trained model records the two means in the
JSON of its snapshots (``MODEL_DIR/snapshots/it-*/state.json``, under
``identities.<side>.mean_embedding``; the flat keys ``mean_embedding_a``/``mean_embedding_b``
are accepted too, as convert does). That layout is the train stage's business, so it is read
defensively and without importing torch: the newest snapshot's state.json first, then any
``*.json`` in the model folder or one level down; whatever is not JSON, or holds no 128-vector
under those keys, is skipped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.errors import InputError, UsageError
from facetwin.faceset import FaceSet

log = logging.getLogger(__name__)

EMBEDDING_DIM = 128
META_KEYS = {"a": "mean_embedding_a", "b": "mean_embedding_b"}


@dataclass
class IdentityRefs:
    """Mean embeddings of A (the original person) and B (the swap's target); None when unknown.

    ``source_a``/``source_b`` say where each came from, for the report.
    """

    mean_a: np.ndarray | None = None
    mean_b: np.ndarray | None = None
    source_a: str = "none"
    source_b: str = "none"


def _vector(value: object) -> np.ndarray | None:
    """A finite (128,) float32 vector, or None for anything else."""
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if v.shape != (EMBEDDING_DIM,) or not np.isfinite(v).all():
        return None
    return v.astype(np.float32)


def _find_means(node: object, depth: int = 0) -> dict[str, np.ndarray]:
    """The A/B mean vectors anywhere in a parsed JSON document (up to three levels deep)."""
    found: dict[str, np.ndarray] = {}
    if not isinstance(node, dict) or depth > 3:
        return found
    idents = node.get("identities")
    for side, key in META_KEYS.items():
        v = _vector(node.get(key))
        if v is None and isinstance(idents, dict) and isinstance(idents.get(side), dict):
            v = _vector(idents[side].get("mean_embedding"))
        if v is not None:
            found[side] = v
    for child in node.values():
        if isinstance(child, dict):
            for side, v in _find_means(child, depth + 1).items():
                found.setdefault(side, v)
    return found


def _snapshot_states(root: Path) -> list[Path]:
    """state.json of ``root`` (a snapshot itself) or of its snapshots, newest first."""
    states = [root / "state.json"] if (root / "state.json").is_file() else []

    def iteration(p: Path) -> int:
        digits = p.parent.name.rpartition("-")[2]
        return int(digits) if digits.isdigit() else -1

    snaps = sorted((root / "snapshots").glob("it-*/state.json"), key=iteration, reverse=True)
    return states + snaps


def model_means(model_dir: str | Path) -> tuple[dict[str, np.ndarray], Path | None]:
    """Mean embeddings kept with a model: ({'a': ..., 'b': ...} as found, their JSON file).

    A missing folder is an InputError because the user named it; finding no means is not (the
    caller falls back and says so).
    """
    root = Path(model_dir)
    if not root.exists():
        raise InputError(f"{root}: no such model folder")
    if root.is_file():
        candidates = [root]
    else:
        candidates = _snapshot_states(root)
        candidates += sorted(root.glob("*.json")) + sorted(root.glob("*/*.json"))
    best: tuple[dict[str, np.ndarray], Path | None] = ({}, None)
    for path in dict.fromkeys(candidates):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        means = _find_means(doc)
        if len(means) > len(best[0]):
            best = (means, path)
        if len(means) == 2:
            break
    return best


def faceset_mean(path: str | Path) -> np.ndarray:
    """Mean embedding of a face set; InputError when it has none."""
    fs = FaceSet.open(path)
    try:
        mean = fs.mean_embedding()
    finally:
        fs.close()
    if mean is None:
        raise InputError(f"{path}: face set holds no face embeddings (re-extract it)")
    return mean


def identity_refs(
    model_dir: str | Path | None = None,
    faceset_a: str | Path | None = None,
    faceset_b: str | Path | None = None,
    direction: str = "a2b",
) -> IdentityRefs:
    """A and B means from face sets (preferred: the user named them) or the model's meta.

    Eval's A is the person in the original and B the swap's target, whatever the model calls
    them: a ``b2a`` conversion shows the model's B in the original, so its means trade places.
    """
    if direction not in ("a2b", "b2a"):
        raise UsageError(f"direction must be a2b or b2a, not {direction!r}")
    refs = IdentityRefs()
    if model_dir is not None:
        means, path = model_means(model_dir)
        if not means:
            log.warning(
                "no %s/%s in the JSON files of %s; identity B is unknown",
                META_KEYS["a"],
                META_KEYS["b"],
                model_dir,
            )
        for model_side, v in means.items():
            side = model_side if direction == "a2b" else {"a": "b", "b": "a"}[model_side]
            setattr(refs, f"mean_{side}", v)
            setattr(refs, f"source_{side}", f"model:{path}")
    if faceset_a is not None:
        refs.mean_a, refs.source_a = faceset_mean(faceset_a), f"faceset:{faceset_a}"
    if faceset_b is not None:
        refs.mean_b, refs.source_b = faceset_mean(faceset_b), f"faceset:{faceset_b}"
    return refs
