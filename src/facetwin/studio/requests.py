"""What the page may ask the queue to run, turned into ``facetwin`` command lines.

The page never sends a command line: it sends the fields of a form, and each builder here checks
them (paths inside the project, numbers in range, names from the registries) and spells the
arguments of the same ``facetwin`` command a person would type. The job then runs exactly the
CLI's code path; nothing a user types is evaluated or reaches a shell.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from facetwin.errors import UsageError
from facetwin.studio.paths import FACESETS_DIR, MODELS_DIR, REPORTS_DIR, Project
from facetwin.train.models import ARCHITECTURES


def _text(doc: dict[str, Any], key: str, default: str | None = None) -> str:
    v = doc.get(key, default)
    if not isinstance(v, str) or not v:
        raise UsageError(f"{key} is required")
    return v


def _int(doc: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    v = doc.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise UsageError(f"{key} must be a whole number within {lo}..{hi}")
    return v


def _inside(project: Project, rel: str, must_exist: bool = True) -> str:
    """``rel`` checked to lie inside the project (and exist); returned in canonical form."""
    path = project.resolve(rel)
    if must_exist and not path.exists():
        raise UsageError(f"{rel}: no such file or folder in the project")
    return project.rel(path) if path.exists() else PurePosixPath(rel).as_posix()


def _new_folder(project: Project, doc: dict[str, Any], key: str, base: str, name: str) -> str:
    """An output folder: the one asked for, or ``base/name``."""
    rel = doc.get(key) or f"{base}/{name}"
    return _inside(project, str(rel), must_exist=False)


def extract_argv(project: Project, doc: dict[str, Any]) -> list[str]:
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise UsageError("inputs: pick at least one video or photo")
    paths = [_inside(project, _text({"i": i}, "i")) for i in inputs]
    output = _new_folder(project, doc, "output", FACESETS_DIR, Path(paths[0]).stem)
    return [*paths, "-o", output]


def train_argv(project: Project, doc: dict[str, Any]) -> list[str]:
    """A new run (both face sets given) or a resume (the model folder alone)."""
    model = _new_folder(project, doc, "model", MODELS_DIR, "model")
    argv = ["-m", model]
    if doc.get("faceset_a") or doc.get("faceset_b"):
        argv += ["-A", _inside(project, _text(doc, "faceset_a"))]
        argv += ["-B", _inside(project, _text(doc, "faceset_b"))]
        arch = _text(doc, "arch", "lite")
        if arch not in ARCHITECTURES.names():
            raise UsageError(f"arch must be one of {', '.join(ARCHITECTURES.names())}")
        argv += ["--arch", arch, "--batch", str(_int(doc, "batch", 8, 1, 256))]
        argv += _recipe(doc)
    elif not project.resolve(model).is_dir():
        raise UsageError(f"{model}: no such model to resume; pick two face sets for a new one")
    argv += ["--iterations", str(_int(doc, "iterations", 1000, 1, 10_000_000))]
    argv += ["--preview-every", str(_int(doc, "preview_every", 50, 0, 100_000))]
    argv += ["--save-every", str(_int(doc, "save_every", 250, 1, 1_000_000))]
    return argv


def _float(doc: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    v = doc.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise UsageError(f"{key} must be a number within {lo:g}..{hi:g}")
    return float(v)


def _recipe(doc: dict[str, Any]) -> list[str]:
    """How a new model learns; the defaults are the demo's CPU recipe (docs/training.md)."""
    schedule = _text(doc, "schedule", "cosine")
    if schedule not in ("constant", "cosine"):
        raise UsageError("schedule must be constant or cosine")
    loss = _text(doc, "loss", "l1+ssim_half")
    if not re.fullmatch(r"[a-z0-9_.+*]{1,80}", loss):  # the trainer parses it; never evaluated
        raise UsageError("loss: terms joined by +, e.g. l1+ssim_half")
    return [
        "--lr", f"{_float(doc, 'lr', 5e-4, 1e-7, 1e-1):g}",
        "--schedule", schedule,
        "--warmup", str(_int(doc, "warmup", 100, 0, 1_000_000)),
        "--loss", loss,
    ]  # fmt: skip


def eval_argv(project: Project, doc: dict[str, Any]) -> list[str]:
    original = _inside(project, _text(doc, "original"))
    swapped = _inside(project, _text(doc, "swapped"))
    model = _inside(project, _text(doc, "model"))
    report = _new_folder(project, doc, "output", REPORTS_DIR, Path(swapped).stem)
    direction = _text(doc, "direction", "a2b")
    if direction not in ("a2b", "b2a"):
        raise UsageError("direction must be a2b or b2a")
    argv = [original, swapped, "-m", model, "-o", report, "--direction", direction]
    start = _int(doc, "start_frame", 0, 0, 10_000_000)
    return [*argv, "--start-frame", str(start)] if start else argv


BUILDERS = {"extract": extract_argv, "train": train_argv, "eval": eval_argv}
