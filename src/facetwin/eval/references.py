"""Where the identities A and B come from: face sets, a model's metadata, or nothing.

The mean 128-D embedding of a person is what "nearer to B than to A" is measured against. Face
sets give it directly (``FaceSet.mean_embedding``). A trained model records each side's mean
over the faces it trained on in its newest snapshot, read without torch through
:class:`facetwin.model_meta.ModelMeta` (the same reader convert's model loading uses); a model
folder without one gives no means (a warning, and eval falls back).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.errors import InputError, UsageError
from facetwin.faceset import FaceSet
from facetwin.model_meta import STATE_FILE, ModelMeta

log = logging.getLogger(__name__)


@dataclass
class IdentityRefs:
    """Mean embeddings of A (the original person) and B (the swap's target); None when unknown.

    ``source_a``/``source_b`` say where each came from, for the report.
    """

    mean_a: np.ndarray | None = None
    mean_b: np.ndarray | None = None
    source_a: str = "none"
    source_b: str = "none"


def model_means(model_dir: str | Path) -> tuple[dict[str, np.ndarray], Path | None]:
    """Mean embeddings kept with a model: ({'a': ..., 'b': ...} as recorded, the state file).

    A missing folder is an InputError because the user named it; a folder with no snapshot, or
    a snapshot without means, gives none (the caller falls back and says so).
    """
    root = Path(model_dir)
    if not root.exists():
        raise InputError(f"{root}: no such model folder")
    try:
        meta = ModelMeta.read(root)
    except InputError as e:
        log.warning("%s", e)
        return {}, None
    return meta.means(), meta.snapshot / STATE_FILE


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
                "%s records no identity means (no snapshot with them); identity B is unknown",
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
