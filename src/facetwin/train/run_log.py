"""What a run reports while it trains: the loss log (``loss.jsonl``, one JSON line per logged
iteration, rank 0 only), the progress bar's numbers, and the time split behind samples/s.

The log is flushed after every line, so a crash or ``kill -9`` loses no logged iteration; a
resumed run first cuts the lines past its snapshot (:func:`~facetwin.train.preview.truncate_log`).
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facetwin.errors import OutputError
from facetwin.train.snapshot_io import write_error
from facetwin.train.step import StepOutput


@dataclass
class Meter:
    """Time split between waiting for batches and computing, plus a samples/s window."""

    per_step: int
    t_start: float
    wait: float = 0.0
    busy: float = 0.0
    window_steps: int = 0
    window_start: float | None = None

    def add(self, t0: float, t1: float, t2: float) -> None:
        if self.window_start is None:
            self.window_start = t0
        self.wait += t1 - t0
        self.busy += t2 - t1
        self.window_steps += 1

    def window_rate(self, now: float) -> float:
        """Samples/s since the previous call (the log interval), then start a new window."""
        start = self.window_start if self.window_start is not None else now
        rate = self.per_step * self.window_steps / max(now - start, 1e-9)
        self.window_start, self.window_steps = now, 0
        return rate


class LossLog:
    """``loss.jsonl`` open for appending; a failed open or write is one OutputError line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.file = path.open("a")
        except OSError as e:
            raise OutputError(f"cannot write {path}: {write_error(e)}") from None

    def write(self, line: dict[str, Any]) -> None:
        try:
            self.file.write(json.dumps(line) + "\n")
            self.file.flush()
        except OSError as e:
            raise OutputError(
                f"cannot write {self.path}: {write_error(e)}; finished "
                "work is saved - run the same command to resume"
            ) from None

    def close(self) -> None:
        with suppress(OSError):  # flushed after every line; a full disk fails in write
            self.file.close()


def log_line(
    iteration: int, elapsed: float, out: StepOutput, rate: float, lr: float
) -> dict[str, Any]:
    """One loss-log record: the step's losses and terms, the rate and the learning rate."""
    return {
        "iteration": iteration,
        "time": round(time.time(), 3),
        "elapsed": round(elapsed, 3),
        "loss_a": out.loss_a,
        "loss_b": out.loss_b,
        "samples_per_s": round(rate, 2),
        "lr": lr,
        **{k: round(v, 6) for k, v in out.terms.items()},
    }


def bar_postfix(out: StepOutput, rate: float, left_minutes: float | None) -> dict[str, str]:
    """The progress bar's numbers: both losses, samples/s and, with a time limit, what is left."""
    post = {"A": f"{out.loss_a:.4f}", "B": f"{out.loss_b:.4f}", "samples/s": f"{rate:.1f}"}
    if left_minutes is not None:
        post["left"] = f"{left_minutes:.1f}min"
    return post
