"""What a job is: its record (:class:`Job`), its states and which commands may be queued.

Kept free of SQLite and processes so that a front end can import it to show jobs, and so that
"is this job blocked?" is a pure function of the list it already has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
STATES: tuple[JobState, ...] = ("queued", "running", "done", "failed", "cancelled")
#: The facetwin commands a job may run: the pipeline's steps. Others (demo, studio, jobs
#: itself) would nest runners or never end, so the queue refuses them.
KINDS: tuple[str, ...] = ("extract", "train", "convert", "eval")
#: States a job never leaves on its own (only retry moves failed/cancelled back to queued).
FINISHED: tuple[JobState, ...] = ("done", "failed", "cancelled")
#: Where a project keeps facetwin's own bookkeeping (the queue, logs, the runner's lock).
STATE_DIR = ".facetwin"


def as_state(value: str) -> JobState:
    """``value`` as a JobState; a value this code never writes means a damaged database."""
    if value not in STATES:
        raise ValueError(f"unknown job state {value!r}")
    return cast(JobState, value)


def log_path_for(project_dir: Path, job_id: int) -> Path:
    """The log of job ``job_id``: one file per job, appended to by each attempt, so a retry
    keeps the output of the run that failed above its own."""
    return project_dir / STATE_DIR / "jobs" / f"{job_id}.log"


@dataclass(frozen=True)
class Job:
    """One queued step, as last stored. A snapshot: read it again (``JobQueue.get``) to see
    changes. ``attempts`` counts starts, so a job rerun after a crash shows 2."""

    id: int
    kind: str
    argv: list[str]
    after: int | None
    state: JobState
    created: float
    started: float | None
    finished: float | None
    pid: int | None
    exit_code: int | None
    progress: float | None
    message: str
    attempts: int
    #: queued but waiting on a job that failed or was cancelled (directly or further up the
    #: chain): no runner starts it until that one is retried and done
    blocked: bool = False
    project_dir: Path = field(default=Path("."), repr=False, compare=False)

    @property
    def log_path(self) -> Path:
        return log_path_for(self.project_dir, self.id)

    @property
    def command(self) -> list[str]:
        """The command line as a person would type it (for lists and logs)."""
        return ["facetwin", self.kind, *self.argv]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, for a web front end."""
        d = asdict(self)
        d["project_dir"] = str(self.project_dir)
        d["log_path"] = str(self.log_path)
        return d


def blocked_ids(jobs: Iterable[Job]) -> set[int]:
    """Ids of queued jobs that cannot run until someone retries a job they wait for: their
    ``after`` failed, was cancelled, is missing, or is itself blocked."""
    by_id = {j.id: j for j in jobs}
    memo: dict[int, bool] = {}

    def blocked(job_id: int, seen: frozenset[int]) -> bool:
        if job_id in memo:
            return memo[job_id]
        job = by_id[job_id]
        result = False
        if job.state == "queued" and job.after is not None:
            up = by_id.get(job.after)
            if up is None or up.state in ("failed", "cancelled") or job.after in seen:
                result = True
            elif up.state == "queued":
                result = blocked(up.id, seen | {job_id})
        memo[job_id] = result
        return result

    return {j for j in by_id if blocked(j, frozenset())}


def with_blocked(jobs: list[Job]) -> list[Job]:
    """``jobs`` with :attr:`Job.blocked` filled in."""
    ids = blocked_ids(jobs)
    return [replace(j, blocked=j.id in ids) for j in jobs]
