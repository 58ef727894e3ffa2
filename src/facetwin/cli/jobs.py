"""``facetwin jobs``: the durable job queue of a project folder (facetwin.jobs)."""

from __future__ import annotations

import argparse

from facetwin.errors import UsageError


def args_jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", default="list", help="add, run, list, retry or cancel")


def cmd_jobs(a: argparse.Namespace) -> int:
    raise UsageError("facetwin jobs is being built")
