"""The studio's HTTP API, one small handler per action (JSON in, JSON or an image out).

Every path in a request is relative to the project and goes through :meth:`Project.resolve`;
handlers that compute (thumbnails, a merger frame, eval verdicts) are plain functions, which
Starlette runs in its thread pool so the event loop keeps streaming progress meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from facetwin.convert import BLENDERS, COLOR_MATCHERS
from facetwin.errors import UsageError
from facetwin.media.video import is_video_path
from facetwin.studio import facesets, live, reports, training
from facetwin.studio.merger import MergeSettings, convert_argv, settings_file
from facetwin.studio.paths import MEDIA_DIR, OUTPUTS_DIR, PathRefused
from facetwin.studio.requests import BUILDERS
from facetwin.studio.uploads import receive_upload
from facetwin.train.config import PREVIEW_FILE
from facetwin.train.models import ARCHITECTURES

STATIC = Path(__file__).resolve().parent / "static"
EVENT_PERIOD_S = 0.5
LOG_TAIL_BYTES = 16_000
#: Headers of files served from the project: a report.html (or anything else in the project)
#: runs in a sandbox, without the studio's origin, so it can never call the API.
FILE_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
NO_STORE = {"Cache-Control": "no-store"}
MAX_MASK_BYTES = 4 * 1024 * 1024


def studio(request: Request) -> Any:
    return request.app.state.studio


def path_param(request: Request, name: str = "path") -> Path:
    """A query parameter naming a path inside the project, resolved (403 outside)."""
    rel = request.query_params.get(name)
    if rel is None:
        raise UsageError(f"{name} is required")
    return studio(request).project.resolve(rel)  # type: ignore[no-any-return]


async def body(request: Request) -> dict[str, Any]:
    try:
        doc = json.loads(await request.body() or b"{}")
    except ValueError:
        raise UsageError("the request body must be JSON") from None
    if not isinstance(doc, dict):
        raise UsageError("the request body must be a JSON object")
    return doc


# -- page and project -------------------------------------------------------------------------


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=NO_STORE)


def project(request: Request) -> Response:
    """What the views offer to pick, and the plugin names the merger and trainer offer."""
    s = studio(request)
    choices = {
        "blend": BLENDERS.names(),
        "color": COLOR_MATCHERS.names(),
        "architectures": ARCHITECTURES.names(),
    }
    return JSONResponse({"root": str(s.project.root), **s.project.inventory(), "choices": choices})


def files(request: Request) -> Response:
    """A file of the project (report.html, a rendered video), sandboxed."""
    path = studio(request).project.resolve(request.path_params["path"])
    if not path.is_file():
        raise FileNotFoundError(request.path_params["path"])
    return FileResponse(path, headers={**FILE_HEADERS, **NO_STORE})


async def upload(request: Request) -> Response:
    s = studio(request)
    length = request.headers.get("content-length")
    saved = await receive_upload(
        request.stream(),
        s.project.root / MEDIA_DIR,
        request.query_params.get("name", ""),
        int(length) if length and length.isdigit() else None,
        s.limits,
    )
    return JSONResponse({"path": s.project.rel(saved)}, status_code=201)


# -- jobs -------------------------------------------------------------------------------------


def jobs_list(request: Request) -> Response:
    return JSONResponse({"jobs": [j.to_dict() for j in studio(request).queue().list()]})


async def jobs_add(request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind not in BUILDERS:
        raise UsageError(f"jobs of kind {kind!r} are started from their own view")
    doc = await body(request)
    s = studio(request)
    argv = BUILDERS[kind](s.project, doc)
    job = await run_in_threadpool(s.queue().add, kind, argv)
    return JSONResponse(job.to_dict(), status_code=201)


def job_action(request: Request) -> Response:
    job_id = int(request.path_params["id"])
    action = request.path_params["action"]
    q = studio(request).queue()
    if action == "cancel":
        q.cancel(job_id)
    elif action == "retry":
        q.retry(job_id)
    else:
        raise UsageError(f"unknown action {action!r}")
    return JSONResponse(q.get(job_id).to_dict())


def job_log(request: Request) -> Response:
    text = studio(request).queue().log_tail(int(request.path_params["id"]), LOG_TAIL_BYTES)
    return Response(text, media_type="text/plain; charset=utf-8")


def snapshot(s: Any) -> dict[str, Any]:
    """What the page's event stream carries: every job, and the training status of each model
    a train job writes (the trainer's files, read as they change)."""
    jobs = [j.to_dict() for j in s.queue().list()]
    train: dict[str, Any] = {}
    for j in jobs:
        if j["kind"] == "train" and "-m" in j["argv"]:
            rel = j["argv"][j["argv"].index("-m") + 1]
            try:
                train[rel] = training.status_dict(s.project.resolve(rel))
            except PathRefused:
                continue
    return {"jobs": jobs, "train": train}


async def events(request: Request) -> Response:
    """Server-sent events: a ``state`` event whenever the jobs or a training run change."""
    s = studio(request)

    async def stream() -> AsyncIterator[str]:
        last = ""
        beat = time.monotonic()
        while not s.closing.is_set() and not await request.is_disconnected():
            doc = json.dumps(await run_in_threadpool(snapshot, s))
            if doc != last:
                last = doc
                beat = time.monotonic()
                yield f"event: state\ndata: {doc}\n\n"
            elif time.monotonic() - beat > 15:
                beat = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(EVENT_PERIOD_S)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={**NO_STORE, "X-Accel-Buffering": "no"}
    )


# -- face sets --------------------------------------------------------------------------------


def faceset_faces(request: Request) -> Response:
    sort = request.query_params.get("sort", "frame")
    desc = request.query_params.get("desc") == "1"
    faces = facesets.list_faces(path_param(request), sort, desc)
    return JSONResponse({"faces": facesets.face_dicts(faces)})


def faceset_thumb(request: Request) -> Response:
    jpeg = facesets.thumbnail(path_param(request), int(request.query_params["id"]))
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


async def faceset_delete(request: Request) -> Response:
    doc = await body(request)
    ids = doc.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise UsageError("ids must be a list of face ids")
    n = await run_in_threadpool(facesets.delete_faces, path_param(request), ids)
    return JSONResponse({"deleted": n})


def faceset_face(request: Request) -> Response:
    png = facesets.aligned_png(path_param(request), int(request.query_params["id"]))
    return Response(png, media_type="image/png", headers=NO_STORE)


def faceset_mask(request: Request) -> Response:
    kind = request.query_params.get("kind", "extended")
    if kind not in ("components", "extended"):
        raise UsageError("kind must be components or extended")
    png = facesets.mask_png(path_param(request), int(request.query_params["id"]), kind)
    return Response(png, media_type="image/png", headers=NO_STORE)


async def faceset_mask_save(request: Request) -> Response:
    """A painted mask (PNG body, the face's size) replaces the face's stored masks."""
    data = await request.body()
    if len(data) > MAX_MASK_BYTES:
        raise UsageError("a mask is a small PNG")
    folder, face_id = path_param(request), int(request.query_params["id"])
    pixels = await run_in_threadpool(facesets.save_mask, folder, face_id, data)
    return JSONResponse({"id": face_id, "face_pixels": pixels})


# -- training ---------------------------------------------------------------------------------


def model_status(request: Request) -> Response:
    folder = path_param(request)
    return JSONResponse(
        {**training.status_dict(folder), "curve": training.curve(training.read_log(folder))}
    )


def model_preview(request: Request) -> Response:
    path = path_param(request) / PREVIEW_FILE
    if not path.is_file():
        raise FileNotFoundError("no preview yet")
    return Response(path.read_bytes(), media_type="image/png", headers=NO_STORE)


# -- merger -----------------------------------------------------------------------------------


def video_info(request: Request) -> Response:
    video = path_param(request, "video")
    if not is_video_path(video):
        raise UsageError("pick a video")
    return JSONResponse(studio(request).merger.video_info(video))


async def merger_frame(request: Request) -> Response:
    doc = await body(request)
    s = studio(request)
    video = s.project.resolve(str(doc.get("video", "")))
    model = s.project.resolve(str(doc.get("model", "")))
    frame = doc.get("frame", 0)
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise UsageError("frame must be a frame number")
    settings = MergeSettings.from_json(doc.get("settings") or {})
    out = await run_in_threadpool(s.merger.render, video, frame, model, settings)
    headers = {**NO_STORE, "X-Faces": str(out.faces), "X-Render-Ms": str(out.milliseconds)}
    return Response(out.jpeg, media_type="image/jpeg", headers=headers)


async def merger_render(request: Request) -> Response:
    """Queue ``facetwin convert`` of the whole video with the page's settings, and write them
    beside the output (``OUTPUT.convert.json``) so the CLI can repeat the render."""
    doc = await body(request)
    s = studio(request)
    p = s.project
    video = p.rel(p.resolve(str(doc.get("video", ""))))
    model = p.rel(p.resolve(str(doc.get("model", ""))))
    settings = MergeSettings.from_json(doc.get("settings") or {})
    default = f"{OUTPUTS_DIR}/{Path(video).stem}_{Path(model).name}_{settings.direction}.mp4"
    out = p.resolve(str(doc.get("output") or default))
    if not is_video_path(out):
        raise UsageError("the output of a video is a video file (.mp4)")
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = convert_argv(video, model, p.rel(out.parent) + "/" + out.name, settings)
    saved = settings_file(out, argv, settings)
    job = await run_in_threadpool(s.queue().add, "convert", argv)
    return JSONResponse({"job": job.to_dict(), "settings_file": p.rel(saved)}, status_code=201)


# -- reports ----------------------------------------------------------------------------------


def report(request: Request) -> Response:
    folder = path_param(request)
    doc = reports.read_report(folder)
    doc["html"] = studio(request).project.rel(folder / reports.REPORT_FILE)
    return JSONResponse(doc)


def report_crops(request: Request) -> Response:
    s = studio(request)
    jpeg = reports.seam_sheet(path_param(request), s.project.resolve, s.merger.frames.get)
    return Response(jpeg, media_type="image/jpeg", headers=NO_STORE)


# -- live -------------------------------------------------------------------------------------


def live_stream(request: Request) -> Response:
    """MJPEG of the video (the camera stand-in) swapped as it plays; one session at a time."""
    s = studio(request)
    video = path_param(request, "video")
    model_dir = path_param(request, "model")
    if not is_video_path(video):
        raise UsageError("pick a video to stand in for the camera")
    direction = request.query_params.get("direction", "a2b")
    occlusion = request.query_params.get("occlusion") == "1"  # off by default: speed
    settings = MergeSettings.from_json({"direction": direction, "occlusion": occlusion})
    model = s.models.get(model_dir)
    swap = live.LiveSwap(model, settings, s.merger.detector())
    s.live_stop.set()  # a new stream ends the one before
    stop = threading.Event()
    s.live_stop = stop
    s.live = live.LiveStats()
    camera = live.CameraStandIn(video).start()

    def parts() -> Iterator[bytes]:
        try:
            for jpeg in live.frames(camera, swap, s.live, stop):
                yield live.mjpeg_part(jpeg)
        finally:
            camera.stop()

    media = f"multipart/x-mixed-replace; boundary={live.BOUNDARY}"
    return StreamingResponse(parts(), media_type=media, headers=NO_STORE)


def live_stats(request: Request) -> Response:
    return JSONResponse(studio(request).live.as_dict())


def live_stop(request: Request) -> Response:
    studio(request).live_stop.set()
    return JSONResponse({"stopped": True})


ROUTES = [
    Route("/api/project", project),
    Route("/api/upload", upload, methods=["PUT", "POST"]),
    Route("/api/jobs", jobs_list),
    Route("/api/jobs/{kind:str}", jobs_add, methods=["POST"]),
    Route("/api/job/{id:int}/log", job_log),
    Route("/api/job/{id:int}/{action:str}", job_action, methods=["POST"]),
    Route("/api/events", events),
    Route("/api/faceset/faces", faceset_faces),
    Route("/api/faceset/thumb", faceset_thumb),
    Route("/api/faceset/delete", faceset_delete, methods=["POST"]),
    Route("/api/faceset/face", faceset_face),
    Route("/api/faceset/mask", faceset_mask),
    Route("/api/faceset/mask", faceset_mask_save, methods=["PUT"]),
    Route("/api/model/status", model_status),
    Route("/api/model/preview", model_preview),
    Route("/api/video", video_info),
    Route("/api/merger/frame", merger_frame, methods=["POST"]),
    Route("/api/merger/render", merger_render, methods=["POST"]),
    Route("/api/report", report),
    Route("/api/report/crops", report_crops),
    Route("/api/live/stream", live_stream),
    Route("/api/live/stats", live_stats),
    Route("/api/live/stop", live_stop, methods=["POST"]),
    Route("/files/{path:path}", files),
]
