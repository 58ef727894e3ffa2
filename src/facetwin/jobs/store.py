"""The queue's database: ``PROJECT/.facetwin/jobs.sqlite``, one row per job.

Every state change is one ``BEGIN IMMEDIATE`` transaction, so a runner killed at any instant
leaves each job in a state it really had, and the next runner decides from that alone. WAL lets
a web page read the queue while the runner writes to it. A connection is opened per operation:
the queue is used from several threads (a web server's and the runner's) and processes, and a
connection costs far less than the half-second between two polls.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facetwin.errors import InputError, OutputError, UsageError
from facetwin.jobs.model import STATE_DIR, Job, as_state

DB_NAME = "jobs.sqlite"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    argv TEXT NOT NULL,
    after INTEGER REFERENCES jobs(id),
    state TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    pid INTEGER,
    pid_start INTEGER,
    exit_code INTEGER,
    progress REAL,
    message TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    log_offset INTEGER NOT NULL DEFAULT 0
);
"""
COLUMNS = (
    "id, kind, argv, after, state, created, started, finished, pid, exit_code, progress, "
    "message, attempts"
)
#: seconds a write waits for another writer (a web request, the runner) before giving up
BUSY_TIMEOUT_S = 30.0


def state_dir(project_dir: Path) -> Path:
    return project_dir / STATE_DIR


def open_db(project_dir: Path) -> sqlite3.Connection:
    """A connection to the project's queue, creating it (and ``.facetwin/``) on first use.

    InputError when the project folder does not exist (a typo should not create a folder),
    OutputError when it cannot be written.
    """
    if not project_dir.is_dir():
        raise InputError(f"project folder {project_dir} does not exist")
    path = state_dir(project_dir) / DB_NAME
    try:
        (state_dir(project_dir) / "jobs").mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except (OSError, sqlite3.OperationalError) as e:
        raise OutputError(f"cannot write the job queue in {project_dir}: {e}") from None
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            create_schema(conn)
            version = SCHEMA_VERSION
    except sqlite3.DatabaseError as e:
        conn.close()
        raise InputError(f"{path} is not a readable job queue ({e})") from None
    if version > SCHEMA_VERSION:
        conn.close()
        raise InputError(f"{path} was written by a newer facetwin (queue schema {version})")
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Make the tables of a new queue. Only then: each open would otherwise take the write lock
    for a moment, and the runner and a web page open the queue twice a second. WAL is a
    property of the file: set once, it stays."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def connection(project_dir: Path) -> Iterator[sqlite3.Connection]:
    conn = open_db(project_dir)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(project_dir: Path) -> Iterator[sqlite3.Connection]:
    """One write transaction: taken at once (IMMEDIATE), so reading a job and then changing it
    cannot interleave with another writer's change of the same job."""
    with connection(project_dir) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def to_job(row: tuple[Any, ...], project_dir: Path) -> Job:
    (id_, kind, argv, after, state, created, started, finished, pid, rc, progress, msg, att) = row
    return Job(
        id=id_,
        kind=kind,
        argv=list(json.loads(argv)),
        after=after,
        state=as_state(state),
        created=created,
        started=started,
        finished=finished,
        pid=pid,
        exit_code=rc,
        progress=progress,
        message=msg,
        attempts=att,
        project_dir=project_dir,
    )


def fetch(conn: sqlite3.Connection, project_dir: Path, job_id: int) -> Job:
    """Job ``job_id``; UsageError when there is none (a mistyped id is the user's)."""
    row = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
    if row is None:
        raise UsageError(f"no job {job_id} in {project_dir} (see facetwin jobs list)")
    return to_job(row, project_dir)


def fetch_all(conn: sqlite3.Connection, project_dir: Path) -> list[Job]:
    rows = conn.execute(f"SELECT {COLUMNS} FROM jobs ORDER BY id").fetchall()
    return [to_job(r, project_dir) for r in rows]


def insert(conn: sqlite3.Connection, kind: str, argv: list[str], after: int | None) -> int:
    cur = conn.execute(
        "INSERT INTO jobs (kind, argv, after, state, created) VALUES (?, ?, ?, 'queued', ?)",
        (kind, json.dumps(argv), after, time.time()),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def next_runnable(conn: sqlite3.Connection, project_dir: Path) -> Job | None:
    """The oldest queued job whose ``after`` is done (or that waits for nothing)."""
    row = conn.execute(
        f"SELECT {', '.join('j.' + c.strip() for c in COLUMNS.split(','))} "
        "FROM jobs j LEFT JOIN jobs a ON a.id = j.after "
        "WHERE j.state = 'queued' AND (j.after IS NULL OR a.state = 'done') "
        "ORDER BY j.id LIMIT 1"
    ).fetchone()
    return None if row is None else to_job(row, project_dir)


def process_of(conn: sqlite3.Connection, job_id: int) -> tuple[int | None, int | None]:
    """The pid of the process running ``job_id`` and its start time (to tell it from a later
    process that got the same pid)."""
    row = conn.execute("SELECT pid, pid_start FROM jobs WHERE id=?", (job_id,)).fetchone()
    return (row[0], row[1]) if row else (None, None)


def with_process(conn: sqlite3.Connection) -> list[tuple[int, str, int, int | None]]:
    """(id, state, pid, pid_start) of every job that has a process recorded."""
    return list(conn.execute("SELECT id, state, pid, pid_start FROM jobs WHERE pid IS NOT NULL"))


def update(conn: sqlite3.Connection, job_id: int, **values: Any) -> None:
    """Set columns of one job (names come from this package, never from a user)."""
    sets = ", ".join(f"{k}=?" for k in values)
    conn.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*values.values(), job_id))


def update_running(conn: sqlite3.Connection, job_id: int, **values: Any) -> bool:
    """Set columns of a job only while it is still running (one statement, so one atomic
    transaction); False when a cancel or retry changed it first."""
    sets = ", ".join(f"{k}=?" for k in values)
    cur = conn.execute(
        f"UPDATE jobs SET {sets} WHERE id=? AND state='running'", (*values.values(), job_id)
    )
    return cur.rowcount > 0
