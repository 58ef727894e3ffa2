"""``facetwin studio``: the local web app (facetwin.studio, optional extra ``[studio]``).

A dispatcher: the studio's packages (starlette, uvicorn) are an optional extra, so they are
imported only when the command runs, with a one-line hint when they are missing.
"""

from __future__ import annotations

import argparse

from facetwin.errors import UsageError


def args_studio(p: argparse.ArgumentParser) -> None:
    p.add_argument("project", nargs="?", default=".", help="project folder (created if missing)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (127.0.0.1); any other needs the printed access token",
    )
    p.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    p.add_argument(
        "--max-upload-mb", type=int, default=2048, metavar="MB", help="largest upload (2048)"
    )
    p.add_argument(
        "--no-jobs",
        action="store_true",
        help="do not run queued jobs in this server (another `facetwin jobs run` does)",
    )


def cmd_studio(a: argparse.Namespace) -> int:
    try:
        from facetwin.studio import ServerConfig, serve
    except ImportError as e:
        raise UsageError(
            f"facetwin studio needs the studio extra ({e.name} is missing): "
            "pip install -e '.[studio]'"
        ) from None
    if not 0 <= a.port <= 65535:
        raise UsageError("--port must be within 0..65535")
    cfg = ServerConfig(
        project=a.project,
        host=a.host,
        port=a.port,
        max_upload_bytes=a.max_upload_mb * 1024 * 1024,
        run_jobs=not a.no_jobs,
    )
    serve(cfg, announce=lambda line: print(line, flush=True))
    return 0
