"""The job queue (facetwin.jobs, `facetwin jobs`) on the bundled clips: a chain of steps runs
through the CLI to the same face set a direct `facetwin extract` makes; a runner killed with
kill -9 mid-job is picked up by the next one and the result equals an uninterrupted run; cancel,
retry, a job behind a failed one, and one-line errors for bad ids and kinds."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import MAN, WOMAN
from facetwin.cli import main
from facetwin.faceset import FaceSet
from facetwin.jobs import Job, JobQueue
from facetwin.jobs.logtext import as_lines, failure_message, last_message, last_progress
from facetwin.jobs.model import blocked_ids
from facetwin.jobs.runner import ending

RUNNER_DEADLINE_S = 180  # 2 shared cores: a torch import alone can take several seconds


def jobs(project: Path, *args: str) -> int:
    return main(["jobs", "-p", str(project), *args])


def start_runner(project: Path) -> subprocess.Popen[bytes]:
    """`facetwin jobs run` as a process of its own group (so a test can kill -9 all of it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "facetwin.cli", "jobs", "-p", str(project), "run", "--poll", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + RUNNER_DEADLINE_S
    while not check():
        assert proc.poll() is None, f"the runner ended (rc {proc.returncode}) before {what}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def next_frame(faceset: Path) -> int:
    """How far a video extraction has committed (0 before its first commit)."""
    try:
        with sqlite3.connect(faceset / "faceset.db", timeout=1) as c:
            row = c.execute("SELECT next_frame FROM sources").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row and row[0] else 0


def dump(path: Path) -> tuple[list, dict[str, str]]:  # type: ignore[type-arg]
    """Every row of a face set and a hash of every face file: equal dumps, equal sets."""
    with FaceSet.open(path) as fs:
        rows = fs.dump()
    files = {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in (path / "faces").glob("*")}
    return rows, files


def running(q: JobQueue, job_id: int) -> Job | None:
    job = q.get(job_id)
    return job if job.state == "running" and job.pid else None


# -- the log reader and the blocked rule (pure) ------------------------------------------------


def test_progress_and_messages_come_from_the_log_text() -> None:
    text = (
        "video:   0%|          | 0/72 [00:00<?, ?frame/s]\r"
        "video:  57%|█████▋    | 41/72 [00:00<00:00, 70.75frame/s, clip.mp4]\r"
    )
    assert last_progress(text) == 0.57
    assert last_message(text) == "video 41/72 [00:00<00:00, 70.75frame/s, clip.mp4]"
    assert last_progress("no bar here\n") is None
    failed = text + "\nfacetwin: error: clip.mp4: no such file or folder\n"
    assert failure_message(failed, 3) == "clip.mp4: no such file or folder"
    assert failure_message("Traceback ...\nValueError: bad\n", 1) == "ValueError: bad"
    assert failure_message(text, -9) == "killed by SIGKILL"
    assert as_lines("a\rb\r\nc\n") == "a\nb\nc\n"


def test_how_an_exit_is_recorded_depends_on_who_stopped_the_job() -> None:
    def job(state: str) -> Job:
        return Job(1, "extract", [], None, state, 0.0, None, None, None, None, None, "x", 1)  # type: ignore[arg-type]

    assert ending(job("running"), 0, "", "result line\n") == ("done", "result line")
    assert ending(job("running"), 3, "", "facetwin: error: bad\n") == ("failed", "bad")
    assert ending(job("running"), 130, "runner", "")[0] == "queued"  # resumes next run
    assert ending(job("cancelled"), 130, "cancel", "") == ("cancelled", "x")
    assert ending(job("queued"), 130, "cancel", "") == ("queued", "x")  # retried meanwhile


def test_a_job_behind_a_failed_or_cancelled_one_is_blocked_down_the_chain() -> None:
    def job(i: int, state: str, after: int | None) -> Job:
        return Job(i, "extract", [], after, state, 0.0, None, None, None, None, None, "", 0)  # type: ignore[arg-type]

    chain = [job(1, "failed", None), job(2, "queued", 1), job(3, "queued", 2)]
    assert blocked_ids(chain) == {2, 3}
    assert blocked_ids([job(1, "running", None), job(2, "queued", 1)]) == set()
    assert blocked_ids([job(1, "cancelled", None), job(2, "queued", 1)]) == {2}
    assert blocked_ids([job(2, "queued", 9)]) == {2}  # waits for a job that is not there


# -- 1. a chain through the CLI ----------------------------------------------------------------


def test_a_chain_runs_to_done_and_extract_equals_a_direct_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    extract_a = [str(MAN), "-o", "A.fs", "--every", "6", "--size", "64"]
    assert jobs(project, "add", "extract", "--", *extract_a) == 0
    first = int(capsys.readouterr().out)
    extract_b = [str(WOMAN), "-o", "B.fs", "--every", "24", "--size", "64"]
    assert jobs(project, "add", "--after", str(first), "extract", "--", *extract_b) == 0
    second = int(capsys.readouterr().out)
    train = ["-A", "A.fs", "-B", "B.fs", "-m", "model", "--arch", "lite", "--iterations", "2"]
    train += ["--batch", "4", "--workers", "0", "--preview-every", "0", "--save-every", "2"]
    assert jobs(project, "add", "--after", str(second), "train", "--", *train) == 0
    third = int(capsys.readouterr().out)

    assert jobs(project, "run", "--poll", "0.2") == 0
    out = capsys.readouterr().out
    assert "jobs: 3 done" in out

    q = JobQueue(project)
    done = [q.get(i) for i in (first, second, third)]
    assert [j.state for j in done] == ["done"] * 3, [(j.state, j.message) for j in done]
    assert all(j.exit_code == 0 and j.progress == 1.0 and j.attempts == 1 for j in done)
    assert done[0].finished <= done[1].started and done[1].finished <= done[2].started  # type: ignore[operator]
    assert (project / "model" / "snapshots" / "it-00000002").is_dir()
    assert "lite: iteration 2" in q.log_tail(third)

    direct = tmp_path / "direct"
    direct.mkdir()
    monkeypatch.chdir(direct)  # the same relative output path, as the job had in its project folder
    assert main(["extract", "-q", *extract_a]) == 0
    with FaceSet.open(direct / "A.fs") as d, FaceSet.open(project / "A.fs") as j:
        assert j.counts() == d.counts() and j.counts()["faces"] == len(range(0, 72, 6))
    assert dump(project / "A.fs") == dump(direct / "A.fs")

    capsys.readouterr()
    for action in (["list"], []):  # `facetwin jobs` alone lists too
        assert jobs(project, *action) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split()[:5] == ["ID", "KIND", "STATE", "AFTER", "PROGRESS"]
        assert [row.split()[2] for row in table[1:]] == ["done"] * 3


# -- 2. kill -9 of the runner and its job --------------------------------------------------------


def test_kill_9_of_the_runner_mid_job_then_run_again_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    args = [str(WOMAN), "-o", "W.fs", "--size", "64", "--every", "2"]
    q = JobQueue(project)
    job = q.add("extract", args)

    runner = start_runner(project)
    try:
        wait_for("a commit", lambda: running(q, job.id) is not None and next_frame(project / "W.fs") >= 64, runner)  # fmt: skip
        child = q.get(job.id).pid
        assert child is not None
        os.killpg(runner.pid, signal.SIGKILL)  # the runner's group: the runner itself
        os.killpg(child, signal.SIGKILL)  # the job runs in a group of its own
    finally:
        runner.kill()
        runner.wait()
    committed = next_frame(project / "W.fs")
    assert 0 < committed < 472, "the kill must land mid-video"
    assert q.get(job.id).state == "running"  # as the killed runner left it
    assert not q.runner_active()

    assert jobs(project, "run", "--poll", "0.2") == 0
    after = q.get(job.id)
    assert (after.state, after.exit_code, after.attempts) == ("done", 0, 2)
    assert "the runner was gone; job queued again" in q.log_tail(job.id)

    reference = tmp_path / "reference"
    reference.mkdir()
    monkeypatch.chdir(reference)
    assert main(["extract", "-q", *args]) == 0
    assert dump(project / "W.fs") == dump(reference / "W.fs")  # nothing lost, nothing twice


# -- 3. cancel, retry, a failed step, errors -----------------------------------------------------


def test_cancel_then_retry_a_failed_step_blocks_its_followers_and_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    q = JobQueue(project)
    job = q.add("extract", [str(WOMAN), "-o", "W.fs", "--size", "64", "--every", "2"])

    runner = start_runner(project)
    try:
        wait_for("progress", lambda: (running(q, job.id) or job).progress is not None, runner)
        assert q.runner_active()
        assert jobs(project, "run") == 7  # one runner per project
        assert "in use by process" in capsys.readouterr().err
        assert jobs(project, "cancel", str(job.id)) == 0
        assert runner.wait(RUNNER_DEADLINE_S) == 0  # the queue is idle: nothing failed
    finally:
        runner.kill()
        runner.wait()
    cancelled = q.get(job.id)
    assert (cancelled.state, cancelled.exit_code, cancelled.pid) == ("cancelled", 130, None)
    assert next_frame(project / "W.fs") < 472  # stopped part-way, what it wrote is kept

    assert jobs(project, "retry", str(job.id)) == 0
    assert jobs(project, "run", "--poll", "0.2") == 0
    retried = q.get(job.id)
    assert (retried.state, retried.attempts) == ("done", 2)
    with FaceSet.open(project / "W.fs") as fs:
        assert fs.counts()["frames"] == len(range(0, 472, 2))

    bad = q.add("extract", ["missing.mp4", "-o", "M.fs"])
    follower = q.add("extract", [str(MAN), "-o", "F.fs"], after=bad.id)
    capsys.readouterr()
    assert jobs(project, "run", "--poll", "0.2") == 1
    assert "1 blocked" in capsys.readouterr().out
    failed = q.get(bad.id)
    assert (failed.state, failed.exit_code) == ("failed", 3)
    assert "missing.mp4" in failed.message
    waiting = q.get(follower.id)
    assert (waiting.state, waiting.blocked, waiting.attempts) == ("queued", True, 0)
    assert not (project / "F.fs").exists()
    capsys.readouterr()
    assert jobs(project, "list", "--json") == 0
    listed = {j["id"]: j for j in json.loads(capsys.readouterr().out)}
    assert listed[follower.id]["blocked"] and listed[bad.id]["state"] == "failed"
    assert listed[bad.id]["log_path"].endswith(f".facetwin/jobs/{bad.id}.log")

    for args in (
        ["retry", "99"],
        ["cancel", "99"],
        ["log", "99"],
        ["add", "demo", "--", "-o", "x"],
        ["add", "--after", "99", "extract", "--", str(MAN), "-o", "X.fs"],
        ["retry", str(job.id)],  # done: nothing to retry
        ["cancel", str(job.id)],
    ):
        assert jobs(project, *args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("facetwin: error:"), (args, err)


# -- 4. the runner in a thread, as a web server runs it --------------------------------------------


def test_a_runner_thread_takes_new_jobs_and_stops_on_request_requeueing_its_job(
    tmp_path: Path,
) -> None:
    """``run(stop_when_idle=False, should_stop=...)`` from a thread: it waits for jobs, runs
    one added after it started, and when asked to stop mid-job gives the job its SIGINT and
    puts it back in the queue (the next run resumes it) instead of calling it failed."""
    project = tmp_path / "project"
    project.mkdir()
    q = JobQueue(project)
    stop = threading.Event()
    seen: list[tuple[int, str]] = []
    thread = threading.Thread(
        target=q.run,
        kwargs=dict(
            stop_when_idle=False,
            poll_s=0.1,
            should_stop=stop.is_set,
            on_update=lambda j: seen.append((j.id, j.state)),
        ),
    )
    thread.start()
    try:
        deadline = time.time() + RUNNER_DEADLINE_S
        while not q.runner_active():
            assert time.time() < deadline
            time.sleep(0.05)
        short = q.add("extract", [str(MAN), "-o", "S.fs", "--size", "64", "--every", "12"])
        long = q.add("extract", [str(WOMAN), "-o", "L.fs", "--size", "64"])
        while (q.get(long.id).progress or 0) < 0.05:
            assert thread.is_alive() and time.time() < deadline, q.get(short.id)
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(RUNNER_DEADLINE_S)
    assert not thread.is_alive() and not q.runner_active()
    assert q.get(short.id).state == "done" and (short.id, "done") in seen
    stopped = q.get(long.id)
    assert (stopped.state, stopped.exit_code, stopped.attempts) == ("queued", 130, 1)
    assert "stopped with the runner" in stopped.message
    assert 0 < next_frame(project / "L.fs") < 472
