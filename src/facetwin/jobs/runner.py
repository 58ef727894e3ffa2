"""The runner: takes queued jobs one at a time and runs each as a ``facetwin`` command.

One runner per project at a time (an advisory lock, dropped by the kernel when the runner dies
even by ``kill -9``), so a runner that holds the lock and finds a job "running" knows that job's
runner is gone: it stops the job's process if it outlived its runner and queues the job again.
Rerunning is how a job resumes: extract, train and convert continue from what they committed.
A job runs in its own process group, so stopping it reaches its helpers, and a Ctrl-C at the
runner's terminal reaches the job only as the one SIGINT the runner forwards (on which facetwin
commands save and exit).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facetwin.errors import BusyError
from facetwin.interrupt import GracefulStop
from facetwin.jobs import logtext, procs, store
from facetwin.jobs.model import Job, JobState, with_blocked
from facetwin.lock import exclusive, lock_path_for

try:  # POSIX only, like facetwin.lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

OnUpdate = Callable[[Job], None]
#: How long a job may take to save and exit after its SIGINT before it is killed. Training
#: writes a snapshot on SIGINT; a large model on a slow disk takes seconds, not minutes.
GRACE_S = 60.0
#: How long a starting runner waits for the lock (a probe of ``runner_active`` holds it for
#: an instant) before saying another runner is active.
LOCK_WAIT_S = 2.0


@dataclass
class RunReport:
    """What one ``run`` did: the ids of jobs that ended in each state, those it left blocked,
    and whether it ended on a stop request rather than an idle queue."""

    done: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    blocked: list[int] = field(default_factory=list)
    stopped: bool = False


def lock_target(project_dir: Path) -> Path:
    """The name the runner's lock is taken on: ``.facetwin/runner`` (file ``.runner.lock``)."""
    return store.state_dir(project_dir) / "runner"


def runner_active(project_dir: Path) -> bool:
    """Whether a runner (in any process, this one included) holds the project's lock now."""
    path = lock_path_for(lock_target(project_dir))
    if fcntl is None or not path.exists():  # pragma: no cover - no locking on this system
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the probe's own shared lock
    return False


@contextmanager
def runner_lock(project_dir: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the project's runner lock, or raise BusyError when another runner holds it."""
    deadline = time.monotonic() + wait_s
    with ExitStack() as stack:
        while True:
            try:
                stack.enter_context(
                    exclusive(lock_target(project_dir), f"the job runner of {project_dir}")
                )
                break
            except BusyError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield


class StopSignals(GracefulStop):
    """SIGINT/SIGTERM while the runner runs: the first asks it to stop (the job gets one SIGINT
    and saves), a second one kills the job at once. Outside the main thread (a web server's
    runner thread) nothing is installed; ``should_stop`` is the way to stop it there."""

    signals = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        super().__init__()
        self.hard = False

    def second(self) -> None:
        self.hard = True


def child_command(job: Job) -> list[str]:
    """The job's process: this Python running the facetwin CLI, the same code path as a
    person typing the command."""
    return [sys.executable, "-m", "facetwin.cli", job.kind, *job.argv]


def child_env() -> dict[str, str]:
    """The runner's environment, with Python's output unbuffered so the log (and the page
    showing it) follows the job as it runs, not in 8 KiB steps, and without the project folder
    on ``sys.path`` (``-m`` would put the job's working folder first, and a folder or file of
    the project named like a module facetwin imports would replace it)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONSAFEPATH": "1"}


def append_log(path: Path, line: str) -> int:
    """Append one marker line to a job's log; returns the log's size after it."""
    with open(path, "ab") as f:
        f.write(line.encode() + b"\n")
        return f.tell()


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


class Runner:
    """One run of the queue of ``project_dir``; see :meth:`facetwin.jobs.JobQueue.run`."""

    def __init__(
        self,
        project_dir: Path,
        poll_s: float = 0.5,
        should_stop: Callable[[], bool] | None = None,
        on_update: OnUpdate | None = None,
        grace_s: float = GRACE_S,
    ) -> None:
        self.project_dir = project_dir
        self.poll_s = poll_s
        self.should_stop = should_stop
        self.on_update = on_update
        self.grace_s = grace_s
        self.signals = StopSignals()

    # -- the loop ----------------------------------------------------------------------------
    def run(self, stop_when_idle: bool = True) -> RunReport:
        report = RunReport()
        store.open_db(self.project_dir).close()  # the project exists and the queue is usable
        with runner_lock(self.project_dir), self.signals:
            self.recover(report)
            while not self.stopping():
                job = self.claim_next()
                if job is None:
                    if stop_when_idle:
                        break
                    time.sleep(self.poll_s)
                    continue
                self.run_one(job, report)
        report.stopped = self.stopping()
        with store.connection(self.project_dir) as conn:
            jobs = with_blocked(store.fetch_all(conn, self.project_dir))
        report.blocked = [j.id for j in jobs if j.blocked]
        for j in jobs:
            if j.blocked:
                log.info("job %d is blocked: job %s did not finish", j.id, j.after)
        return report

    def stopping(self) -> bool:
        return self.signals.requested or bool(self.should_stop and self.should_stop())

    def notify(self, job_id: int) -> None:
        if self.on_update is not None:
            with store.connection(self.project_dir) as conn:
                self.on_update(store.fetch(conn, self.project_dir, job_id))

    # -- crash recovery ----------------------------------------------------------------------
    def recover(self, report: RunReport) -> None:
        """Jobs left "running" by a runner that is gone go back to the queue (their process
        stopped first if it outlived the runner); a process left by a cancelled job is
        stopped too."""
        with store.connection(self.project_dir) as conn:
            leftovers = store.with_process(conn)
            running = [j for j in store.fetch_all(conn, self.project_dir) if j.state == "running"]
        for _, _, pid, started in leftovers:
            procs.stop_orphan(pid, started, self.grace_s)
        with store.transaction(self.project_dir) as conn:
            for job in running:
                current = store.fetch(conn, self.project_dir, job.id)
                if current.state != "running":
                    continue
                store.update(
                    conn,
                    job.id,
                    state="queued",
                    pid=None,
                    pid_start=None,
                    message=f"requeued: its runner stopped during attempt {job.attempts}",
                )
                report.requeued.append(job.id)
            conn.execute("UPDATE jobs SET pid=NULL, pid_start=NULL WHERE pid IS NOT NULL")
        for job in running:
            log.warning("job %d was running when its runner stopped; running it again", job.id)
            append_log(job.log_path, f"--- {stamp()} the runner was gone; job queued again ---")

    # -- one job -----------------------------------------------------------------------------
    def claim_next(self) -> Job | None:
        """Mark the oldest runnable job running (one transaction) and return it."""
        with store.transaction(self.project_dir) as conn:
            job = store.next_runnable(conn, self.project_dir)
            if job is None:
                return None
            store.update(
                conn,
                job.id,
                state="running",
                started=time.time(),
                finished=None,
                pid=None,
                pid_start=None,
                exit_code=None,
                progress=None,
                message="starting",
                attempts=job.attempts + 1,
            )
            return store.fetch(conn, self.project_dir, job.id)

    def run_one(self, job: Job, report: RunReport) -> None:
        """Run ``job`` to its end, keeping its row current, and record how it ended."""
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        header = f"--- {stamp()} job {job.id} attempt {job.attempts}: {shlex.join(job.command)}"
        offset = append_log(job.log_path, header + " ---")
        try:
            with open(job.log_path, "ab") as out:
                proc = subprocess.Popen(
                    child_command(job),
                    cwd=self.project_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=child_env(),
                )
        except OSError as e:  # the job fails, not the runner: the next job may well start
            with store.connection(self.project_dir) as conn:
                store.update_running(
                    conn, job.id, state="failed", finished=time.time(), message=f"cannot start: {e}"
                )
            report.failed.append(job.id)
            self.notify(job.id)
            return
        try:
            rc, stopped_by = self.watch(job, proc, offset)
        except BaseException:
            self.stop_child(proc)
            raise
        procs.signal_group(proc.pid, signal.SIGKILL)  # helpers it left behind, if any
        self.finish(job, rc, stopped_by, offset, report)

    def watch(self, job: Job, proc: subprocess.Popen[bytes], offset: int) -> tuple[int, str]:
        """Poll the job's process until it exits, updating progress and message from its log,
        forwarding a stop of the runner, and noticing a cancel. Returns its exit code and
        what stopped it early ("" when nothing did, "cancel" or "runner")."""
        stopped_by = ""
        sigint_at: float | None = None
        with store.connection(self.project_dir) as conn:
            recorded = store.update_running(
                conn,
                job.id,
                pid=proc.pid,
                pid_start=procs.start_time(proc.pid),
                log_offset=offset,
                message="started",
            )
        if not recorded:  # cancelled before its pid was known: the cancel could not signal it
            procs.signal_group(proc.pid, signal.SIGINT)
            stopped_by, sigint_at = "cancel", time.monotonic()
        self.notify(job.id)
        seen: tuple[float | None, str] = (None, "started")
        while (rc := proc.poll()) is None:
            text = logtext.read_end(job.log_path, offset, logtext.SCAN_BYTES)
            now = (logtext.last_progress(text), logtext.last_message(text) or "started")
            with store.connection(self.project_dir) as conn:
                still = store.fetch(conn, self.project_dir, job.id).state == "running"
                if still and now != seen:
                    still = store.update_running(conn, job.id, progress=now[0], message=now[1])
            if still and now != seen:
                seen = now
                self.notify(job.id)
            if not still and not stopped_by:  # cancel() sent the SIGINT
                stopped_by, sigint_at = "cancel", time.monotonic()
            if self.stopping() and not stopped_by:
                procs.signal_group(proc.pid, signal.SIGINT)
                stopped_by, sigint_at = "runner", time.monotonic()
            late = sigint_at is not None and time.monotonic() - sigint_at > self.grace_s
            if self.signals.hard or late:
                procs.signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.poll_s)  # a poll's pause that ends the moment the job exits
        return rc, stopped_by

    def stop_child(self, proc: subprocess.Popen[bytes]) -> None:
        """The runner itself is failing: give the job its SIGINT and the grace period, then
        kill its group. Its row stays "running", so the next runner requeues it."""
        procs.signal_group(proc.pid, signal.SIGINT)
        try:
            proc.wait(self.grace_s)
        except subprocess.TimeoutExpired:
            procs.signal_group(proc.pid, signal.SIGKILL)
            proc.wait()

    def finish(self, job: Job, rc: int, stopped_by: str, offset: int, report: RunReport) -> None:
        """Record the end of ``job``'s attempt in one transaction (see :func:`ending`)."""
        text = logtext.read_end(job.log_path, offset, logtext.SCAN_BYTES)
        with store.transaction(self.project_dir) as conn:
            current = store.fetch(conn, self.project_dir, job.id)
            state, message = ending(current, rc, stopped_by, text)
            values: dict[str, Any] = dict(pid=None, pid_start=None, exit_code=rc)
            values.update(state=state, message=message)
            if state == "done":
                values["progress"] = 1.0
            if state != "queued":
                values["finished"] = current.finished or time.time()
            store.update(conn, job.id, **values)
        ended = {"done": report.done, "failed": report.failed, "cancelled": report.cancelled}
        ended.get(state, report.requeued).append(job.id)
        append_log(job.log_path, f"--- {stamp()} exit code {rc}: {state} ---")
        self.notify(job.id)


def ending(current: Job, rc: int, stopped_by: str, text: str) -> tuple[JobState, str]:
    """A job's state and message once its process exited with ``rc``. Someone else's change
    wins (a cancel, or a retry queued while it was stopping); a job stopped because the runner
    stopped goes back to the queue, as the next run resumes it; otherwise the exit code decides
    done or failed."""
    if current.state != "running":
        return current.state, current.message
    if rc == 0:
        return "done", logtext.summary_line(text)
    if stopped_by == "runner":
        return "queued", "stopped with the runner; the next `facetwin jobs run` resumes it"
    return "failed", logtext.failure_message(text, rc)
