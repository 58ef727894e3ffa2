"""``facetwin jobs``: the durable job queue of a project folder (facetwin.jobs).

facetwin jobs [-p PROJECT] add [--after N] KIND -- ARGS...   prints the new job's id
facetwin jobs [-p PROJECT] run [--keep-running]              runs until the queue is idle
facetwin jobs [-p PROJECT] list [--json]
facetwin jobs [-p PROJECT] retry N | cancel N | log N
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from typing import TextIO

from facetwin.errors import UsageError
from facetwin.jobs import KINDS, Job, JobQueue, RunReport

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def args_jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-p", "--project", default=".", metavar="PROJECT", help="project folder (default: .)"
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    add = sub.add_parser(
        "add",
        help="queue a step; prints its id",
        description="Queue `facetwin KIND ARGS...` to run in the project folder (relative "
        "paths are relative to it). Put -- before ARGS.",
    )
    add.add_argument("--after", type=int, metavar="N", help="start only once job N is done")
    add.add_argument("kind", metavar="KIND", help=", ".join(KINDS))
    add.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="its arguments")
    run = sub.add_parser("run", help="run queued jobs one at a time until the queue is idle")
    run.add_argument(
        "--keep-running", action="store_true", help="wait for new jobs instead of ending"
    )
    run.add_argument("--poll", type=float, default=0.5, help="seconds between checks (0.5)")
    lst = sub.add_parser("list", help="the jobs: id, kind, state, progress, message")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    for name, help_ in (
        ("retry", "queue a failed or cancelled job again (it resumes)"),
        ("cancel", "cancel a queued job, or stop a running one (what it wrote is kept)"),
        ("log", "print the end of a job's output"),
    ):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("id", type=int, metavar="N")
        if name == "log":
            sp.add_argument("--bytes", type=int, default=20000, help="how much (20000)")


def cmd_jobs(a: argparse.Namespace) -> int:
    q = JobQueue(a.project)
    action = a.action or "list"
    if action == "add":
        return add(q, a.kind, a.args, a.after)
    if action == "run":
        return run(q, a.keep_running, a.poll, quiet=a.quiet)
    if action == "list":
        jobs = q.list()
        as_json = getattr(a, "json", False)  # plain `facetwin jobs` lists without options
        print(json.dumps([j.to_dict() for j in jobs], indent=2) if as_json else table(jobs))
        return 0
    if action == "retry":
        job = q.retry(a.id)
        print(f"job {job.id} queued again; `facetwin jobs run` resumes it")
        return 0
    if action == "cancel":
        job = q.cancel(a.id)
        print(f"job {job.id} {job.message}")
        return 0
    sys.stdout.write(q.log_tail(a.id, a.bytes))
    return 0


def add(q: JobQueue, kind: str, args: list[str], after: int | None) -> int:
    """Queue one step after checking its arguments with the command's own parser, so that a
    typo fails now and not hours later when the job's turn comes."""
    args = args[1:] if args[:1] == ["--"] else args
    if "-h" in args or "--help" in args:
        raise UsageError(f"a job's arguments cannot ask for --help (see facetwin {kind} --help)")
    if kind in KINDS:
        from facetwin.cli import build_parser  # facetwin.cli imports this module

        argv = [kind, *args]
        try:
            build_parser(argv).parse_args(argv)
        except SystemExit as e:  # the parser printed its one line
            return e.code if isinstance(e.code, int) else 2
    print(q.add(kind, args, after=after).id)
    return 0


def run(q: JobQueue, keep_running: bool, poll_s: float, quiet: bool) -> int:
    display = Display(sys.stderr, quiet)
    report = q.run(stop_when_idle=not keep_running, poll_s=poll_s, on_update=display.show)
    display.end()
    print(summary(report))
    if report.stopped:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if report.failed else 0


def summary(r: RunReport) -> str:
    """One line on what a run did, naming what needs a person (failures, blocked jobs)."""
    parts = [f"{len(r.done)} done"]
    if r.failed:
        parts.append(f"{len(r.failed)} failed ({ids(r.failed)}: see facetwin jobs log N)")
    if r.cancelled:
        parts.append(f"{len(r.cancelled)} cancelled")
    if r.blocked:
        parts.append(f"{len(r.blocked)} blocked behind failed or cancelled jobs ({ids(r.blocked)})")
    if r.stopped:
        parts.append("stopped: `facetwin jobs run` resumes the queue")
    return "jobs: " + ", ".join(parts)


def ids(values: list[int]) -> str:
    return ", ".join(str(v) for v in values)


def percent(progress: float | None) -> str:
    return "-" if progress is None else f"{progress * 100:.0f}%"


def shown_state(job: Job) -> str:
    """The state a person needs: a queued job that cannot start says so."""
    return "blocked" if job.blocked else job.state


def table(jobs: list[Job], width: int = 60) -> str:
    """The queue as a text table, oldest first."""
    if not jobs:
        return "no jobs (add one with: facetwin jobs add KIND -- ARGS...)"
    head = f"{'ID':>4}  {'KIND':<8} {'STATE':<9} {'AFTER':>5} {'PROGRESS':>8} {'TRIES':>5}  MESSAGE"
    rows = [
        f"{j.id:>4}  {j.kind:<8} {shown_state(j):<9} {j.after or '-':>5} "
        f"{percent(j.progress):>8} {j.attempts:>5}  {clip(j.message, width)}"
        for j in jobs
    ]
    return "\n".join([head, *rows])


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


class Display:
    """What ``facetwin jobs run`` shows while it works: on a terminal one line per job that
    redraws itself; elsewhere (a log file) a line when a job starts and when it ends."""

    def __init__(self, out: TextIO, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet
        self.live = out.isatty()
        self.last_state: dict[int, str] = {}
        self.drawn = False
        self.last_draw = 0.0

    def show(self, job: Job) -> None:
        if self.quiet:
            return
        changed = self.last_state.get(job.id) != job.state
        self.last_state[job.id] = job.state
        line = f"job {job.id} {job.kind}: {job.state} {percent(job.progress)} {job.message}"
        if self.live and not changed and time.monotonic() - self.last_draw < 0.2:
            return
        if self.live:
            width = shutil.get_terminal_size().columns - 1  # a wrapped line cannot redraw
            self.out.write("\r\x1b[K" + clip(line, max(width, 20)))
            if job.state != "running":
                self.out.write("\n")
            self.drawn = job.state == "running"
            self.last_draw = time.monotonic()
        elif changed:
            self.out.write(clip(line, 200) + "\n")
        self.out.flush()

    def end(self) -> None:
        if self.drawn:
            self.out.write("\n")
            self.out.flush()
