"""What a model folder says about its model, read without torch: the contract between train and
the stages that use a model (convert, eval).

A model folder holds snapshots ``snapshots/it-NNNNNNNN/`` (see docs/training.md); each has a
``state.json`` written last, so a snapshot with one is complete. :class:`ModelMeta` is the newest
complete snapshot's state: the architecture, the iteration, the model id that labels outputs,
the coverage, and each identity's face set and mean embedding. Eval reads identities from it
without loading 330 MB of weights; train's checkpoint code uses the same reader before it loads
them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.errors import InputError

FORMAT = "facetwin-train-snapshot"
VERSION = 1
SNAPSHOTS = "snapshots"
STATE_FILE = "state.json"
EMBEDDING_DIM = 128
_NAME = re.compile(r"^it-(\d{8,})$")


def list_snapshots(model_dir: Path) -> list[Path]:
    """Complete snapshots (those with a state.json), oldest first."""
    root = Path(model_dir) / SNAPSHOTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found) if (p / STATE_FILE).is_file()]


def latest_snapshot(model_dir: Path) -> Path | None:
    snaps = list_snapshots(model_dir)
    return snaps[-1] if snaps else None


def find_snapshot(path: Path) -> Path:
    """``path`` itself if it is a snapshot, else the newest snapshot of model dir ``path``."""
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    if not path.is_dir():
        raise InputError(f"model {path} does not exist")
    snap = latest_snapshot(path)
    if snap is None:
        raise InputError(f"{path} holds no trained model (no snapshots); run `facetwin train`")
    return snap


def read_state(snapshot: Path) -> dict[str, Any]:
    """state.json of a snapshot; InputError if missing, unreadable or not ours."""
    path = Path(snapshot) / STATE_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{snapshot} is not a facetwin snapshot (no {STATE_FILE})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"snapshot state {path} is corrupt ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{path} is not a facetwin training snapshot")
    if int(doc.get("version", 0)) > VERSION:
        raise InputError(f"{path} has snapshot version {doc['version']}; upgrade facetwin")
    return doc


def embedding_vector(value: object) -> np.ndarray | None:
    """A finite (128,) float32 vector, or None for anything else (a crafted file included)."""
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if v.shape != (EMBEDDING_DIM,) or not np.isfinite(v).all():
        return None
    return v.astype(np.float32)


@dataclass(frozen=True)
class ModelMeta:
    """The newest complete snapshot of a model folder, as the other stages need it."""

    snapshot: Path
    arch: str
    iteration: int
    model_id: str
    config: dict[str, Any] = field(default_factory=dict)
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, model_dir: str | Path) -> ModelMeta:
        """InputError (one line) when the folder has no complete snapshot or its state is not
        facetwin's."""
        snap = find_snapshot(Path(model_dir))
        doc = read_state(snap)
        try:
            idents = doc.get("identities") or {}
            return cls(
                snapshot=snap,
                arch=str(doc["arch"]),
                iteration=int(doc["iteration"]),
                model_id=str(doc["model_id"]),
                config=dict(doc.get("config") or {}),
                identities={s: dict(v) for s, v in idents.items() if isinstance(v, dict)},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{snap / STATE_FILE} is damaged ({e!r} missing or wrong)") from None

    @property
    def coverage(self) -> float | None:
        value = self.config.get("coverage")
        return None if value is None else float(value)

    def mean_embedding(self, side: str) -> np.ndarray | None:
        """Identity ``side``'s mean 128-D embedding over the faces it trained on, if recorded."""
        return embedding_vector(self.identities.get(side, {}).get("mean_embedding"))

    def means(self) -> dict[str, np.ndarray]:
        """The recorded means by side ("a", "b")."""
        found = {s: self.mean_embedding(s) for s in ("a", "b")}
        return {s: v for s, v in found.items() if v is not None}
