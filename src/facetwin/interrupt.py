"""Ctrl-C that never loses work: the first one asks a loop to stop at its next safe point.

A ``KeyboardInterrupt`` raised wherever the main thread happens to be can land half-way through
a frame, after some state was updated and before the rest was, and a handler that then saves
"what was done" saves a lie (issue 15: a frame went missing and a track split in two). Here the
first SIGINT only sets a flag; the loop checks it between frames, after it has saved a
consistent state, and then raises ``KeyboardInterrupt`` itself. A second Ctrl-C stops at once
(the last saved state is still consistent, only the work since then is redone on resume).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Self


class GracefulStop:
    """Context manager: ``requested`` turns true on the first of ``signals`` (Ctrl-C) inside the
    block; a second one calls :meth:`second` (stop at once).

    Outside the main thread (where signal handlers cannot be installed) it does nothing and
    Ctrl-C behaves as usual.
    """

    signals: tuple[signal.Signals, ...] = (signal.SIGINT,)

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            self.second()
        self.requested = True

    def second(self) -> None:
        """A second signal: stop at once."""
        raise KeyboardInterrupt

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a stop was asked for: call it at a safe point."""
        if self.requested:
            raise KeyboardInterrupt

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
