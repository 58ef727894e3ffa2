"""The ``facetwin`` command. It only parses arguments and calls the Python API.

Errors a user can cause end as one line on stderr and a non-zero exit code (see errors.py);
Ctrl-C keeps what was written and says how to resume.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from facetwin import __version__
from facetwin.cli.commands import (
    cmd_convert,
    cmd_demo,
    cmd_eval,
    cmd_extract,
    cmd_info,
    cmd_train,
    cmd_verify,
)
from facetwin.cli.jobs import args_jobs, cmd_jobs
from facetwin.cli.options import (
    args_convert,
    args_demo,
    args_eval,
    args_extract,
    args_info,
    args_train,
    args_verify,
)
from facetwin.cli.studio import args_studio, cmd_studio
from facetwin.errors import FacetwinError

CONSENT = (
    "Use facetwin only on faces of people who have given their consent. Every output is "
    "labelled as synthetic (metadata + invisible watermark) unless you pass --no-label."
)

EXIT_INTERRUPTED = 130
EXIT_DISK_FULL = 5
ArgsFn = Callable[[argparse.ArgumentParser], None]


#: command -> (what runs it, its one-line help, what adds its arguments)
COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, ArgsFn]] = {
    "extract": (
        cmd_extract,
        "Find, align and store every face of photos and videos.",
        args_extract,
    ),
    "info": (cmd_info, "Summarise a face set.", args_info),
    "train": (
        cmd_train,
        "Train a face-swap model on two face sets (resumes MODEL_DIR).",
        args_train,
    ),
    "convert": (cmd_convert, "Swap faces in a photo, folder of photos or video.", args_convert),
    "verify": (cmd_verify, "Report whether files carry facetwin's synthetic label.", args_verify),
    "eval": (
        cmd_eval,
        "Measure a swap: identity, pose/expression kept, jitter, seams.",
        args_eval,
    ),
    "demo": (cmd_demo, "Run the whole pipeline on the bundled clips.", args_demo),
    "jobs": (
        cmd_jobs,
        "Queue extract/train/convert/eval steps in a project folder and run them (resumable).",
        args_jobs,
    ),
    "studio": (
        cmd_studio,
        "Open the local web studio on a project folder (needs the [studio] extra).",
        args_studio,
    ),
}


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is one; options before it take no
    value), or None."""
    return next((a for a in argv if not a.startswith("-") and a in COMMANDS), None)


class _Parser(argparse.ArgumentParser):
    """argparse keeping facetwin's promise for usage errors too: one line and exit 2, with a
    pointer to ``--help`` instead of the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"facetwin: error: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``facetwin`` parser. With ``argv``, only the command named there gets its arguments:
    building them imports that stage's plugins (their names are the choices), and ``facetwin
    verify`` should not wait for torch. Without, every command gets them (docs/cli.md)."""
    p = _Parser(
        prog="facetwin",
        description="Face swap: extract -> train -> convert -> eval. " + CONSENT,
    )
    p.add_argument("--version", action="version", version=f"facetwin {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = None if argv is None else _command_in(argv)
    for name, (fn, help_, add_args) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_ + " " + CONSENT)
        sp.set_defaults(func=fn)
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        if argv is None or name == wanted:
            add_args(sp)
    return p


def _one_line(message: object) -> str:
    """``message`` on one line: newlines and other control characters (from a crafted file name
    or a library's message) become spaces, so the promise of one line holds."""
    text = "".join(c if c.isprintable() else " " for c in str(message))
    return " ".join(text.split())


def _quiet_native_logs(verbose: bool) -> None:
    """Keep OpenCV's own "[ WARN:0@...]" / "[ERROR:0@...]" lines off stderr: facetwin says what
    went wrong in its one line. Set before cv2 is imported (it reads OPENCV_LOG_LEVEL then), and
    on cv2 itself when something imported it already. ``-v`` leaves them on. FFmpeg's log (PyAV)
    is off unless a program turns it on (``av.logging``), and libpng's messages are silenced
    around each decode (media/image.py)."""
    if verbose:
        return
    import os

    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and os.environ["OPENCV_LOG_LEVEL"].upper() in ("OFF", "SILENT"):
        with contextlib.suppress(Exception):
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def main(argv: Sequence[str] | None = None) -> int:
    from facetwin.registry import load_external_plugins

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        load_external_plugins()  # before the parser: their names become choices
    except FacetwinError as e:
        print(f"facetwin: error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (already printed, one line)
        return e.code if isinstance(e.code, int) else 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="facetwin: %(levelname)s: %(message)s",
    )
    _quiet_native_logs(args.verbose)
    try:
        return int(args.func(args))
    except FacetwinError as e:
        print(f"facetwin: error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(
            "facetwin: interrupted - finished work is saved; run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            print(
                _one_line(
                    f"facetwin: error: disk full ({e.filename or ''}); finished work is saved"
                ),
                file=sys.stderr,
            )
            return EXIT_DISK_FULL
        raise
    except Exception as e:
        # SQLite's "database or disk is full" where no facetwin code wrapped it: still exit 5
        import sqlite3

        if isinstance(e, sqlite3.OperationalError) and "full" in str(e):
            print(
                f"facetwin: error: disk full ({_one_line(e)}); finished work is saved",
                file=sys.stderr,
            )
            return EXIT_DISK_FULL
        raise


if __name__ == "__main__":
    sys.exit(main())
