"""``facetwin studio``: the local web app (facetwin.studio, optional extra ``[studio]``)."""

from __future__ import annotations

import argparse

from facetwin.errors import UsageError


def args_studio(p: argparse.ArgumentParser) -> None:
    p.add_argument("project", nargs="?", default=".", help="project folder")


def cmd_studio(a: argparse.Namespace) -> int:
    raise UsageError("facetwin studio is being built")
