"""Learning-rate schedules: the rate of iteration ``i`` as a pure function of ``i``.

Why a schedule at all: the seed's recipe (Adam at a constant 5e-5) was made for days of GPU time.
On a CPU budget of minutes the run is short and known in advance, and the classic answer for a
known budget is a short linear warm-up to a much higher peak (Adam's first steps have poorly
estimated moments, so starting at the peak diverges) followed by a cosine decay to a small
fraction of it: most of the distance is covered at the high rate, and the decay lets the weights
settle into a minimum instead of rattling around it - which on video shows as flicker.

A pure function of the iteration (no scheduler state) keeps resuming exact: the trainer sets
the rate of iteration ``i`` before step ``i``, whatever happened before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from facetwin.errors import UsageError

SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class LrSchedule:
    """kind: 'constant' (the seed's) or 'cosine' (warm-up, then cosine decay to ``final``).

    warmup: iterations of the linear ramp from ~0 to the peak rate.
    final: the rate at the last iteration, as a fraction of the peak.
    """

    kind: str = "constant"
    warmup: int = 0
    final: float = 0.05

    def check(self) -> None:
        if self.kind not in SCHEDULES:
            raise UsageError(f"--schedule must be one of {', '.join(SCHEDULES)}, not {self.kind!r}")
        if self.warmup < 0 or not 0 <= self.final <= 1:
            raise UsageError("need warm-up >= 0 and 0 <= final <= 1")

    def factor(self, iteration: int, total: int | None) -> float:
        """Multiplier of the peak rate at ``iteration`` (0-based) of a run of ``total``.

        Without a known total (training by minutes or until Ctrl-C) a cosine cannot be laid out,
        so only the warm-up applies and the rate then stays at the peak.
        """
        if self.warmup and iteration < self.warmup:
            return (iteration + 1) / (self.warmup + 1)
        if self.kind == "constant" or not total:
            return 1.0
        span = max(total - self.warmup, 1)
        t = min(max(iteration - self.warmup, 0) / span, 1.0)
        return self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * t))
