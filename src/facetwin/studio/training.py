"""What the training view shows of a model folder while the trainer writes it: the loss curve
(``loss.jsonl``), iterations/s and time left, the newest preview grid and the run's settings.

Everything is read from the files the trainer writes anyway, so the view shows the same for a run
the studio started, one started with ``facetwin train`` in a terminal, and one that has ended.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from facetwin.train.config import CONFIG_FILE, LOSS_LOG, PREVIEW_FILE

#: Loss-log lines the rate is measured over (the log has one line per 10 iterations).
RATE_WINDOW = 20
#: Points of the loss curve sent to the page (a long run is thinned evenly).
CURVE_POINTS = 400

#: The settings the view lists, with what each means (the CLI's help in a sentence).
SETTING_HELP = {
    "arch": "network: lite is small and fast on a CPU; original is the classic 64 px model",
    "batch": "faces per identity per step",
    "iterations": "the run stops at this iteration",
    "lr": "peak learning rate",
    "loss": "reconstruction loss terms",
    "coverage": "how much of the head the training crop holds (1.0 = tight face)",
    "preview_every": "a new preview grid every this many iterations",
    "save_every": "a snapshot (resume point) every this many iterations",
    "holdout": "share of each clip's last frames kept out of training",
}


@dataclass(frozen=True)
class TrainStatus:
    iteration: int
    target: int | None
    iterations_per_s: float | None
    seconds_left: float | None
    loss_a: float | None
    loss_b: float | None
    preview_version: int | None  # the preview's mtime in ns: the page reloads it when it moves
    settings: list[dict[str, Any]]


def read_log(model_dir: Path) -> list[dict[str, Any]]:
    """The loss log, skipping a line cut short by a write in progress."""
    path = model_dir / LOSS_LOG
    try:
        text = path.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "iteration" in doc:
            out.append(doc)
    return out


def read_config(model_dir: Path) -> dict[str, Any]:
    try:
        doc = json.loads((model_dir / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def rate(log: list[dict[str, Any]]) -> float | None:
    """Iterations per second over the last :data:`RATE_WINDOW` lines of this session (a resumed
    run restarts ``elapsed``, so the window stops at such a jump)."""
    tail = log[-RATE_WINDOW:]
    start = 0
    for i in range(1, len(tail)):
        if tail[i]["elapsed"] < tail[i - 1]["elapsed"]:
            start = i
    tail = tail[start:]
    if len(tail) < 2:
        return None
    dt = float(tail[-1]["elapsed"]) - float(tail[0]["elapsed"])
    di = int(tail[-1]["iteration"]) - int(tail[0]["iteration"])
    return round(di / dt, 3) if dt > 0 and di > 0 else None


def curve(log: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Iteration, loss A and loss B, thinned to at most :data:`CURVE_POINTS` points."""
    step = max(1, len(log) // CURVE_POINTS)
    rows = log[::step]
    if log and rows[-1] is not log[-1]:
        rows.append(log[-1])
    return {
        "iteration": [int(r["iteration"]) for r in rows],
        "loss_a": [float(r.get("loss_a") or 0) for r in rows],
        "loss_b": [float(r.get("loss_b") or 0) for r in rows],
    }


def status(model_dir: Path) -> TrainStatus:
    log = read_log(model_dir)
    cfg = read_config(model_dir)
    last = log[-1] if log else {}
    iteration = int(last.get("iteration", 0))
    target = cfg.get("iterations")
    its = rate(log)
    left = None
    if its and isinstance(target, int) and target > iteration:
        left = round((target - iteration) / its, 1)
    preview = model_dir / PREVIEW_FILE
    version = preview.stat().st_mtime_ns if preview.is_file() else None
    settings = [
        {"name": k, "value": cfg[k], "meaning": meaning}
        for k, meaning in SETTING_HELP.items()
        if k in cfg
    ]
    return TrainStatus(
        iteration=iteration,
        target=target if isinstance(target, int) else None,
        iterations_per_s=its,
        seconds_left=left,
        loss_a=last.get("loss_a"),
        loss_b=last.get("loss_b"),
        preview_version=version,
        settings=settings,
    )


def status_dict(model_dir: Path) -> dict[str, Any]:
    return asdict(status(model_dir))
