"""A durable job queue in a project folder: extract, train, convert and eval steps queued,
run one at a time in the background, and resumed after a crash (FaceFusion's job manager idea).

Why a queue rather than one long script: a project's steps take hours, a front end (the studio)
must show and steer them while they run, and a machine may reboot half-way. The queue keeps
each job's state in SQLite (``.facetwin/jobs.sqlite``) and runs every job as the ``facetwin``
command a person would type, so a job behaves exactly as the CLI does - including resuming from
what it had written when it is run again.

    q = JobQueue("project")
    a = q.add("extract", ["clip.mp4", "-o", "A.fs"])
    q.add("train", ["-A", "A.fs", "-B", "B.fs", "-m", "model"], after=a.id)
    q.run()  # until the queue is idle

See docs/jobs.md.
"""

from __future__ import annotations

from facetwin.jobs.model import FINISHED, KINDS, STATES, Job, JobState
from facetwin.jobs.queue import JobQueue
from facetwin.jobs.runner import RunReport, runner_active

__all__ = [
    "FINISHED",
    "KINDS",
    "STATES",
    "Job",
    "JobQueue",
    "JobState",
    "RunReport",
    "runner_active",
]
