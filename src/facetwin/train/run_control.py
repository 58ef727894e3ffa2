"""When a run stops: its time budget (``--minutes``) and Ctrl-C, both checked between steps.

Both are decided for all ranks at once (:func:`should_stop`): a rank that stopped alone would
leave the others waiting in the gradient all-reduce for ever.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch

from facetwin.train import ddp


class InterruptLatch:
    """Turns the first Ctrl-C into a flag the loop checks between steps.

    A KeyboardInterrupt in the middle of an optimizer step would leave some parameters updated
    and others not; that state must never be saved. A second Ctrl-C raises at once (no save).
    """

    def __init__(self) -> None:
        self.count = 0
        self._old: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt

    def __enter__(self) -> InterruptLatch:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


@dataclass(frozen=True)
class TimeBudget:
    """This session's wall-clock deadline (``time.perf_counter`` seconds); None: no limit.

    Counted from the session's start, data loading included, so ``--minutes 5`` is five minutes
    of the user's time, not of stepping.
    """

    deadline: float | None = None

    @classmethod
    def start(cls, minutes: float | None, t_start: float) -> TimeBudget:
        return cls(None if minutes is None else t_start + minutes * 60)

    def up(self) -> bool:
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def left_minutes(self, now: float) -> float | None:
        """Minutes left at ``now`` (0 once past), None without a limit."""
        return None if self.deadline is None else max(self.deadline - now, 0) / 60


def should_stop(
    dist: ddp.DistInfo, device: torch.device, budget: TimeBudget, latch: InterruptLatch
) -> bool:
    """True when the time is up on any rank; KeyboardInterrupt when any rank got Ctrl-C."""
    timeup, stop = ddp.any_flags(dist, device, budget.up(), latch.count > 0)
    if stop:
        raise KeyboardInterrupt
    return timeup
