"""The studio's views on real data: a face set of the bundled clip browsed, sorted and cleaned;
the merger swapping one frame with a loaded model fast enough to follow a slider, and its
settings changing the picture; the live path streaming swapped frames with its figures."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from conftest import WOMAN, train_lite
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.faceset import FaceSet
from facetwin.media.image import decode_image, encode_image
from facetwin.media.video import copy_head
from facetwin.studio import Studio, create_app, live
from facetwin.studio.merger import MergeSettings
from facetwin.studio.paths import Project
from facetwin.studio.security import Access

BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with 1 s of the woman's clip, its face set and a 4-iteration lite model (her
    face set on both sides: the views need a model folder, not a good model)."""
    root = tmp_path_factory.mktemp("studio")
    (root / "media").mkdir()
    clip = copy_head(WOMAN, root / "media" / "woman.mp4", 1.0)
    extract([clip], root / "facesets" / "woman", ExtractConfig(progress=False))
    twin = shutil.copytree(root / "facesets/woman", tmp_path_factory.mktemp("twin") / "woman")
    train_lite(root / "facesets/woman", twin, root / "models/m", 4, batch=4)
    return root


@pytest.fixture(scope="module")
def client(project: Path) -> TestClient:
    studio = Studio(Project.open(project), run_jobs=False)
    return TestClient(create_app(studio, Access.for_bind("127.0.0.1", 8765)), base_url=BASE)


def test_inventory_finds_what_the_cli_made(client: TestClient) -> None:
    inv = client.get("/api/project").json()
    assert inv["facesets"] == ["facesets/woman"]
    assert inv["models"] == ["models/m"]
    assert inv["videos"] == ["media/woman.mp4"]


def test_faceset_grid_sorted_and_cleaned(client: TestClient, project: Path) -> None:
    faces = client.get("/api/faceset/faces?path=facesets/woman&sort=blur").json()["faces"]
    assert len(faces) >= 20
    blur = [f["blur"] for f in faces]
    assert blur == sorted(blur)
    assert all(f["distance"] is not None and f["distance"] < 0.6 for f in faces)
    desc = client.get("/api/faceset/faces?path=facesets/woman&sort=yaw&desc=1").json()["faces"]
    yaw = [abs(f["yaw"]) for f in desc]
    assert yaw == sorted(yaw, reverse=True)
    thumb = client.get(f"/api/faceset/thumb?path=facesets/woman&id={faces[0]['id']}")
    img = decode_image(thumb.content)
    assert img is not None and img.shape == (112, 112, 3)
    # delete the two blurriest: gone from the rows training reads, PNGs kept aside
    doomed = [faces[0]["id"], faces[1]["id"]]
    r = client.post("/api/faceset/delete?path=facesets/woman", json={"ids": doomed})
    assert r.json() == {"deleted": 2}
    with FaceSet.open(project / "facesets/woman") as fs:
        left = {rec.id for rec in fs.faces()}
    assert not left & set(doomed) and len(left) == len(faces) - 2
    assert len(list((project / "facesets/woman/deleted").glob("*.png"))) == 2
    assert client.get("/api/faceset/faces?path=facesets/woman&sort=nope").status_code == 400


def frame(client: TestClient, index: int, **settings: object) -> tuple[bytes, float]:
    doc = {"video": "media/woman.mp4", "model": "models/m", "frame": index, "settings": settings}
    t0 = time.perf_counter()
    r = client.post("/api/merger/frame", json=doc)
    assert r.status_code == 200, r.text
    assert r.headers["x-faces"] == "1"
    return r.content, time.perf_counter() - t0


def test_merger_follows_the_sliders_within_a_second(client: TestClient) -> None:
    frame(client, 10)  # loads the model, decodes the frame, finds the face
    base, _ = frame(client, 10, erode=0.06)
    eroded, seconds = frame(client, 10, erode=0.2)
    assert seconds < 1.0
    a, b = decode_image(base), decode_image(eroded)
    assert a is not None and b is not None and a.shape == (360, 640, 3)
    changed = np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 8
    assert 100 < changed.sum() < 0.2 * changed.size  # the face's edge moved, not the frame
    overlay, _ = frame(client, 10, blend="overlay", color="none")
    assert overlay != base
    other, _ = frame(client, 20)
    assert other != base
    r = client.post(
        "/api/merger/frame",
        json={
            "video": "media/woman.mp4",
            "model": "models/m",
            "frame": 10,
            "settings": {"erode": 0.9},
        },
    )
    assert r.status_code == 400


def test_render_queues_convert_with_the_settings_beside_it(
    client: TestClient, project: Path
) -> None:
    doc = {"video": "media/woman.mp4", "model": "models/m", "settings": {"erode": 0.12}}
    r = client.post("/api/merger/render", json=doc)
    assert r.status_code == 201
    job = r.json()["job"]
    assert job["kind"] == "convert" and job["argv"][:3] == ["media/woman.mp4", "-m", "models/m"]
    saved = project / r.json()["settings_file"]
    assert saved.is_file() and "--erode" in saved.read_text()


def test_live_swap_streams_labelled_frames(client: TestClient, project: Path) -> None:
    studio = client.app.state.studio  # type: ignore[attr-defined]
    model = studio.models.get(project / "models/m")
    swap = live.LiveSwap(model, MergeSettings(), studio.merger.detector())
    camera = live.CameraStandIn(project / "media/woman.mp4", realtime=False, loop=False).start()
    stats = live.LiveStats()
    jpegs = list(live.frames(camera, swap, stats, threading.Event()))
    camera.stop()
    assert len(jpegs) == stats.frames >= 20
    figures = stats.as_dict()
    assert figures["fps"] > 1 and figures["latency_ms"] > 0 and figures["dropped"] == 0
    part = live.mjpeg_part(jpegs[0])
    assert part.startswith(b"--" + live.BOUNDARY.encode()) and b"image/jpeg" in part


def test_mask_editor_replaces_the_stored_mask(client: TestClient, project: Path) -> None:
    """A painted mask is what training reads next (both stored kinds become it)."""
    face_id = client.get("/api/faceset/faces?path=facesets/woman").json()["faces"][3]["id"]
    face = decode_image(client.get(f"/api/faceset/face?path=facesets/woman&id={face_id}").content)
    mask = decode_image(
        client.get(f"/api/faceset/mask?path=facesets/woman&id={face_id}").content, grey=True
    )
    assert face is not None and mask is not None and mask.shape == face.shape[:2]
    assert set(np.unique(mask)) == {0, 255}
    painted = mask.copy()
    painted[: mask.shape[0] // 3] = 0  # hair over the forehead: not face
    painted[-10:, :20] = 255
    r = client.put(
        f"/api/faceset/mask?path=facesets/woman&id={face_id}", content=encode_image(painted)
    )
    assert r.status_code == 200 and r.json()["face_pixels"] == int((painted > 0).sum())
    with FaceSet.open(project / "facesets/woman") as fs:
        rec = next(x for x in fs.faces() if x.id == face_id)
        for kind in ("components", "extended"):
            assert np.array_equal(fs.load_mask(rec, kind), painted)
    small = encode_image(painted[:50, :50])
    r = client.put(f"/api/faceset/mask?path=facesets/woman&id={face_id}", content=small)
    assert r.status_code == 400


def test_zoomed_crops_of_a_report(client: TestClient, project: Path) -> None:
    """Original | swap face crops from a report's recorded inputs and face boxes."""
    from facetwin.studio.reports import CROP_SIDE

    faces = client.get("/api/faceset/faces?path=facesets/woman").json()["faces"]
    with FaceSet.open(project / "facesets/woman") as fs:
        boxes = {r.frame: list(r.box) for r in fs.faces()}
    rows = [{"frame": f["frame"], "found": True, "box": boxes[f["frame"]]} for f in faces]
    report = project / "reports" / "r"
    report.mkdir(parents=True)
    doc = {"kind": "video", "original": "media/woman.mp4", "swapped": "media/woman.mp4"}
    (report / "metrics.json").write_text(json.dumps({**doc, "per_frame": rows}))
    r = client.get("/api/report/crops?path=reports/r")
    sheet = decode_image(r.content)
    assert sheet is not None and sheet.shape == (4 * CROP_SIDE, 2 * CROP_SIDE + 4, 3)
    left, right = sheet[:, :CROP_SIDE].astype(int), sheet[:, CROP_SIDE + 4 :].astype(int)
    assert np.abs(left - right).mean() < 2  # the same video on both sides
    outside = {**doc, "swapped": "../../etc/passwd", "per_frame": rows}
    (report / "metrics.json").write_text(json.dumps(outside))
    assert client.get("/api/report/crops?path=reports/r").status_code == 403
