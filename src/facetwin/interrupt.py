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
from typing import Any


class GracefulStop:
    """Context manager: ``requested`` turns true on the first Ctrl-C inside the block.

    Outside the main thread (where signal handlers cannot be installed) it does nothing and
    Ctrl-C behaves as usual.
    """

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a stop was asked for: call it at a safe point."""
        if self.requested:
            raise KeyboardInterrupt

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._old)
            self._installed = False
