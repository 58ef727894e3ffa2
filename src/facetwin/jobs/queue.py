"""The queue's public face: :class:`JobQueue` - add, list, cancel, retry, read logs, run.

Every method opens the database for its own transaction and keeps nothing in memory, so a
``JobQueue`` may be shared by a web server's threads, and two processes (the CLI and a
front end) see the same queue at every instant.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from facetwin.errors import UsageError
from facetwin.jobs import logtext, procs, store
from facetwin.jobs.model import KINDS, Job, with_blocked
from facetwin.jobs.runner import GRACE_S, OnUpdate, Runner, RunReport, runner_active


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UsageError(f"a job runs one of {', '.join(KINDS)}, not {kind!r}")


def check_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` as a list of strings (a bare string would be split into characters)."""
    if isinstance(argv, str | bytes) or not all(isinstance(a, str) for a in argv):
        raise UsageError("a job's arguments are a list of strings")
    return list(argv)


class JobQueue:
    """The durable job queue of a project folder.

    State lives in ``PROJECT/.facetwin/jobs.sqlite``, each job's output in
    ``PROJECT/.facetwin/jobs/<id>.log``. Job arguments are those of the facetwin command;
    relative paths in them are relative to the project folder (jobs run there).
    """

    def __init__(self, project_dir: str | os.PathLike[str]) -> None:
        self.project_dir = Path(project_dir).absolute()
        store.open_db(self.project_dir).close()  # fail now on a missing or unusable folder

    # -- reading -----------------------------------------------------------------------------
    def get(self, job_id: int) -> Job:
        """Job ``job_id`` as stored now; UsageError if there is none."""
        for job in self.list():  # all of them: whether it is blocked depends on the others
            if job.id == job_id:
                return job
        raise UsageError(f"no job {job_id} in {self.project_dir} (see facetwin jobs list)")

    def list(self) -> list[Job]:
        """Every job, oldest first (newest last), with ``blocked`` filled in."""
        with store.connection(self.project_dir) as conn:
            return with_blocked(store.fetch_all(conn, self.project_dir))

    def log_tail(self, job_id: int, max_bytes: int = 20000) -> str:
        """The end of job ``job_id``'s output (all its attempts), tqdm's ``\\r`` redraws as
        lines; empty before its first start."""
        job = self.get(job_id)
        return logtext.as_lines(logtext.read_end(job.log_path, 0, max_bytes))

    def runner_active(self) -> bool:
        """Whether a runner (of any process) is working on this project now."""
        return runner_active(self.project_dir)

    # -- changing ----------------------------------------------------------------------------
    def add(self, kind: str, argv: Sequence[str], after: int | None = None) -> Job:
        """Queue ``facetwin KIND ARGV...``; with ``after``, only once job ``after`` is done."""
        check_kind(kind)
        args = check_argv(argv)
        with store.transaction(self.project_dir) as conn:
            if after is not None:
                store.fetch(conn, self.project_dir, after)  # UsageError when unknown
            job_id = store.insert(conn, kind, args, after)
        return self.get(job_id)

    def cancel(self, job_id: int) -> Job:
        """A queued job is cancelled at once; a running one is marked cancelled and its process
        group gets SIGINT (the command saves what it wrote and exits; the runner records its
        exit). Finished jobs cannot be cancelled (UsageError)."""
        with store.transaction(self.project_dir) as conn:
            job = store.fetch(conn, self.project_dir, job_id)
            if job.state not in ("queued", "running"):
                raise UsageError(f"job {job_id} is {job.state}; only queued or running jobs stop")
            pid, started = store.process_of(conn, job_id)
            store.update(
                conn,
                job_id,
                state="cancelled",
                finished=time.time(),
                message="cancelled" if job.state == "queued" else "cancelled while running",
            )
        if job.state == "running" and pid is not None and procs.is_alive(pid, started):
            procs.signal_group(pid, signal.SIGINT)
        return self.get(job_id)

    def retry(self, job_id: int) -> Job:
        """Queue a failed or cancelled job again. Its command resumes from what the previous
        attempt committed (extract, train and convert all resume), so nothing is redone."""
        with store.transaction(self.project_dir) as conn:
            job = store.fetch(conn, self.project_dir, job_id)
            if job.state not in ("failed", "cancelled"):
                raise UsageError(f"job {job_id} is {job.state}; only failed or cancelled retry")
            store.update(
                conn, job_id, state="queued", finished=None, exit_code=None, message="retry"
            )
        return self.get(job_id)

    # -- running -----------------------------------------------------------------------------
    def run(
        self,
        stop_when_idle: bool = True,
        poll_s: float = 0.5,
        should_stop: Callable[[], bool] | None = None,
        on_update: OnUpdate | None = None,
        grace_s: float = GRACE_S,
    ) -> RunReport:
        """Run queued jobs one at a time until the queue is idle (or, without
        ``stop_when_idle``, until ``should_stop()`` or SIGINT/SIGTERM). BusyError when another
        runner works on this project. ``on_update`` sees each change of the running job."""
        runner = Runner(self.project_dir, poll_s, should_stop, on_update, grace_s)
        return runner.run(stop_when_idle)
