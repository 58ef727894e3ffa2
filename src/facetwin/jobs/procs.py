"""The processes a runner starts: each job's command in its own process group (session).

Why a group: a command may start helpers (training's data-loader workers, ffmpeg), and a
stop must reach all of them, while a Ctrl-C meant for the runner's terminal must not reach
them uncontrolled (the runner forwards one SIGINT, the stop facetwin's commands save on).
Why the start time next to the pid: a runner that finds a job "running" after a crash must
not signal an unrelated process that was given the same pid since.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux ``/proc``), or None when
    it is gone, a zombie, or the system has no ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the name in (...) may hold spaces
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_alive(pid: int, started: int | None) -> bool:
    """Whether the process recorded as (``pid``, ``started``) still runs. Without ``/proc``
    the pid alone decides (the best a portable check can do)."""
    now = start_time(pid)
    if now is not None:
        return started is None or now == started
    if Path("/proc/self/stat").exists():
        return False  # /proc works, so the process is gone or a zombie
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        log.warning("not allowed to signal process group %d", pgid)
        return False
    return True


def stop_orphan(pid: int, started: int | None, grace_s: float, poll_s: float = 0.1) -> None:
    """Stop a job process that outlived its runner (not our child, so it cannot be waited
    for): SIGINT to its group, so the command saves what it did, then SIGKILL after
    ``grace_s``. Returns when it is gone."""
    if not is_alive(pid, started):
        return  # its group is not signalled: the number may belong to someone else by now
    log.warning("stopping process %d left running by a runner that is gone", pid)
    signal_group(pid, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    while is_alive(pid, started) and time.monotonic() < deadline:
        time.sleep(poll_s)
    signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    while is_alive(pid, started) and time.monotonic() < deadline:
        time.sleep(poll_s)
