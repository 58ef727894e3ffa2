"""The studio's web application: the :class:`Studio` (everything the server keeps between
requests) and :func:`create_app`, which wires the routes, the access rules and the job runner.

The Studio object is the only state: a request handler reaches it as ``request.app.state.studio``.
The job runner - the same ``JobQueue.run`` loop ``facetwin jobs run`` uses - runs in a
background thread from start-up to shut-down, so jobs started from the page run even with the
page closed, and a server killed mid-job resumes them on its next start.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from facetwin.errors import FacetwinError
from facetwin.jobs import JobQueue
from facetwin.studio import routes
from facetwin.studio.live import LiveStats
from facetwin.studio.merger import Merger, ModelCache
from facetwin.studio.paths import PathRefused, Project
from facetwin.studio.security import Access, AccessMiddleware
from facetwin.studio.uploads import UploadLimits, UploadRefused

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"


@dataclass
class Studio:
    """What the server keeps: the project, the queue, loaded models and the live session."""

    project: Project
    limits: UploadLimits = field(default_factory=UploadLimits)
    device: str = "auto"
    run_jobs: bool = True
    models: ModelCache = field(init=False)
    merger: Merger = field(init=False)
    live: LiveStats = field(default_factory=LiveStats)
    live_stop: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)  # the job runner's
    closing: threading.Event = field(default_factory=threading.Event)  # the server is stopping
    runner: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.models = ModelCache(self.device)
        self.merger = Merger(self.models)

    def queue(self) -> JobQueue:
        return JobQueue(self.project.root)

    def start_runner(self) -> None:
        """The job runner loop in a daemon thread (it resumes jobs a killed server left)."""
        if not self.run_jobs or self.runner is not None:
            return
        self.stop.clear()
        self.runner = threading.Thread(target=self._run, name="facetwin-jobs", daemon=True)
        self.runner.start()

    def _run(self) -> None:
        try:
            self.queue().run(stop_when_idle=False, poll_s=0.5, should_stop=self.stop.is_set)
        except Exception:  # the page shows jobs stuck in "queued"; the log says why
            log.exception("the job runner stopped")

    def stop_runner(self) -> None:
        self.stop.set()
        self.live_stop.set()
        if self.runner is not None:
            self.runner.join(timeout=30)
            self.runner = None


async def _refused(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=403)


async def _upload_refused(request: Request, exc: Exception) -> Response:
    status = exc.status if isinstance(exc, UploadRefused) else 400
    return JSONResponse({"error": str(exc)}, status_code=status)


async def _bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"not found: {exc}"}, status_code=404)


def create_app(studio: Studio, access: Access) -> Starlette:
    """The ASGI app: API routes, the static page, and every request checked by ``access``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        studio.start_runner()
        try:
            yield
        finally:
            studio.stop_runner()

    app = Starlette(
        routes=[
            *routes.ROUTES,
            Route("/", routes.index),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(AccessMiddleware, access=access)],
        exception_handlers={
            PathRefused: _refused,
            UploadRefused: _upload_refused,
            FacetwinError: _bad_request,
            ValueError: _bad_request,
            KeyError: _not_found,
            FileNotFoundError: _not_found,
        },
        lifespan=lifespan,
    )
    app.state.studio = studio
    return app
