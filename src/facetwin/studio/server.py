"""Starting the studio: pick the address, make the token, print the URL, run uvicorn.

127.0.0.1 unless the user names another interface; then a random access token is made, printed
inside the URL once, and required on every request (security.py). The URL goes to stdout - the
one place a person starting a server looks - through the ``announce`` callback the CLI passes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import uvicorn

from facetwin.studio.app import Studio, create_app
from facetwin.studio.paths import Project
from facetwin.studio.security import Access, is_loopback
from facetwin.studio.uploads import DEFAULT_MAX_BYTES, UploadLimits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    project: Path
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    max_upload_bytes: int = DEFAULT_MAX_BYTES
    device: str = "auto"
    run_jobs: bool = True


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def url_for(host: str, port: int, token: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = socket.gethostname()
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def build(cfg: ServerConfig) -> tuple[Studio, Access, int]:
    port = cfg.port or free_port(cfg.host)
    access = Access.for_bind(cfg.host, port)
    studio = Studio(
        Project.open(cfg.project),
        limits=UploadLimits(cfg.max_upload_bytes),
        device=cfg.device,
        run_jobs=cfg.run_jobs,
    )
    return studio, access, port


def serve(cfg: ServerConfig, announce: Callable[[str], None] = log.warning) -> None:
    """Run the studio until Ctrl-C (jobs keep their state; the next start resumes them).

    The server's own torch work is batch-1 inference (a merger frame, a live frame), which a
    second intra-op thread does not speed up; one thread leaves the other cores to decoding and
    detection (benchmarks/bench_live.py). Jobs run in their own processes with their own threads.
    """
    import torch

    torch.set_num_threads(1)
    studio, access, port = build(cfg)
    app = create_app(studio, access)
    url = url_for(cfg.host, port, access.token)
    announce(f"facetwin studio on {studio.project.root}: {url}")
    if not is_loopback(cfg.host):
        announce("listening beyond this machine: the token in the URL is required on every request")
    config = uvicorn.Config(
        app, host=cfg.host, port=port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=5,
    )  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server is stopped
        _Server(config, studio).run()
    announce("facetwin studio stopped; queued jobs run again on the next start")


class _Server(uvicorn.Server):
    """uvicorn's server, telling the studio's streams to end as soon as a stop is asked for:
    open event streams and a live view would otherwise hold the graceful shutdown."""

    def __init__(self, config: uvicorn.Config, studio: Studio) -> None:
        super().__init__(config)
        self.studio = studio

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.studio.closing.set()
        self.studio.live_stop.set()
        super().handle_exit(sig, frame)
