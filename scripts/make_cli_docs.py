"""Write docs/cli.md from the parser's own --help text (run after changing cli.py; a test checks
that the file is current)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["", "extract", "info", "train", "convert", "verify", "eval", "demo", "jobs", "studio"]
HEAD = (
    "# The facetwin command line\n\nGenerated from `facetwin COMMAND --help` by "
    "`scripts/make_cli_docs.py`. Exit codes: 0 ok, 1 other error (or `verify`: no label found), "
    "2 usage, 3 bad input, 4 no face, 5 cannot write / disk full, 6 model mismatch, "
    "7 output in use by another process, 130 interrupted "
    "(finished work is kept; the same command resumes).\n"
)


def help_text(command: str) -> str:
    """``facetwin COMMAND --help`` at a fixed width of 100 columns."""
    from facetwin.cli import build_parser

    os.environ["COLUMNS"] = "100"
    buf = io.StringIO()
    args = [command, "--help"] if command else ["--help"]
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        build_parser().parse_args(args)
    return buf.getvalue().rstrip() + "\n"


def render() -> str:
    parts = [HEAD]
    for c in COMMANDS:
        parts.append(f"\n## facetwin {c}\n\n```\n{help_text(c)}```\n")
    return "".join(parts)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    (ROOT / "docs" / "cli.md").write_text(render())
