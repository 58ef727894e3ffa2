"""The studio's HTTP API through Starlette's test client: access rules (host, origin, token),
path confinement, upload limits, and the views' data (jobs, face sets, training, merger settings,
report verdicts) - no browser, no job runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient  # the [studio] extra, which make test installs

from facetwin.studio import Studio, create_app
from facetwin.studio.merger import MergeSettings, convert_argv, settings_file
from facetwin.studio.paths import PathRefused, Project
from facetwin.studio.security import Access
from facetwin.studio.uploads import UploadLimits

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "data" / "video" / "single_face.mp4"
PHOTO = ROOT / "data" / "images" / "single_face.jpg"
BASE = "http://127.0.0.1:8765"


def make_client(project: Path, access: Access | None = None, max_bytes: int = 10**8) -> TestClient:
    studio = Studio(Project.open(project), limits=UploadLimits(max_bytes), run_jobs=False)
    app = create_app(studio, access or Access.for_bind("127.0.0.1", 8765))
    return TestClient(app, base_url=BASE)


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return make_client(tmp_path / "project")


# -- access ---------------------------------------------------------------------------------


def test_page_and_project_inventory(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "facetwin studio" in r.text
    assert client.get("/static/app.js").status_code == 200
    doc = client.get("/api/project").json()
    assert doc["videos"] == [] and "mask" in doc["choices"]["blend"]
    assert "lite" in doc["choices"]["architectures"]


def test_foreign_host_and_cross_origin_refused(client: TestClient) -> None:
    """DNS rebinding (another Host) and another site's page (Origin) are refused."""
    assert client.get("/api/project", headers={"host": "evil.example:8765"}).status_code == 403
    r = client.post("/api/jobs/extract", json={}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    ok = client.get("/api/project", headers={"origin": BASE})
    assert ok.status_code == 200


def test_token_required_off_localhost(tmp_path: Path) -> None:
    access = Access.for_bind("0.0.0.0", 8765)
    assert access.token and len(access.token) >= 24
    c = make_client(tmp_path / "p", access)
    assert c.get("/").status_code == 403
    assert c.get("/api/project").status_code == 403
    assert c.get("/api/project?token=wrong").status_code == 403
    first = c.get(f"/?token={access.token}")
    assert first.status_code == 200
    assert "facetwin_token" in first.headers.get("set-cookie", "")
    # the cookie the tokened page load set lets the page's own requests through
    assert c.get("/api/project").status_code == 200
    c.cookies.clear()
    auth = {"authorization": f"Bearer {access.token}"}
    assert c.get("/api/project", headers=auth).status_code == 200
    assert c.get("/api/project").status_code == 403


def test_loopback_needs_no_token(client: TestClient) -> None:
    assert Access.for_bind("127.0.0.1", 1).token is None
    assert client.get("/api/project").status_code == 200


# -- paths ----------------------------------------------------------------------------------


def test_path_traversal_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    c = make_client(project)
    (project / "ok.txt").write_text("yours")
    (project / "link.txt").symlink_to(secret)
    assert c.get("/files/ok.txt").text == "yours"
    for bad in ("%2e%2e/secret.txt", "..%2fsecret.txt", "link.txt", "%2Fetc%2Fpasswd"):
        r = c.get(f"/files/{bad}")
        assert r.status_code in (403, 404), bad
        assert "not yours" not in r.text
    for bad in ("../secret.txt", "/etc/passwd", "link.txt", "a/../../secret.txt"):
        r = c.get("/api/faceset/faces", params={"path": bad})
        assert r.status_code == 403, bad
        r = c.post("/api/jobs/extract", json={"inputs": [bad]})
        assert r.status_code == 403, bad
    with pytest.raises(PathRefused):
        Project.open(project).resolve("..")


def test_project_files_are_sandboxed(client: TestClient, tmp_path: Path) -> None:
    """A report.html runs without the studio's origin: it cannot call the API."""
    (tmp_path / "project" / "report.html").write_text("<script>fetch('/api/project')</script>")
    r = client.get("/files/report.html")
    assert r.headers["content-security-policy"] == "sandbox"


# -- uploads --------------------------------------------------------------------------------


def test_upload_video_and_photo(client: TestClient, tmp_path: Path) -> None:
    r = client.put("/api/upload?name=my clip.mp4", content=CLIP.read_bytes())
    assert r.status_code == 201 and r.json()["path"] == "media/my_clip.mp4"
    again = client.put("/api/upload?name=my clip.mp4", content=CLIP.read_bytes())
    assert again.json()["path"] == "media/my_clip-2.mp4"  # never overwrites
    assert client.put("/api/upload?name=face.jpg", content=PHOTO.read_bytes()).status_code == 201
    inv = client.get("/api/project").json()
    assert inv["videos"] == ["media/my_clip-2.mp4", "media/my_clip.mp4"]
    assert inv["images"] == ["media/face.jpg"]


def test_oversize_upload_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    c = make_client(project, max_bytes=50_000)
    data = CLIP.read_bytes()  # 208 kB
    r = c.put("/api/upload?name=big.mp4", content=data)
    assert r.status_code == 413
    # no Content-Length (chunked): stopped once the bytes pass the limit, nothing left behind
    chunks = (data[i : i + 8192] for i in range(0, len(data), 8192))
    r = c.put("/api/upload?name=big.mp4", content=chunks)
    assert r.status_code == 413
    assert not any((project / "media").iterdir())


def test_upload_type_refused(client: TestClient, tmp_path: Path) -> None:
    assert client.put("/api/upload?name=run.sh", content=b"#!/bin/sh\n").status_code == 415
    r = client.put("/api/upload?name=fake.mp4", content=b"<html>not a video</html>")
    assert r.status_code == 415
    r = client.put("/api/upload?name=../../escape.mp4", content=CLIP.read_bytes())
    assert r.status_code == 201 and r.json()["path"] == "media/escape.mp4"
    assert not (tmp_path / "escape.mp4").exists()


# -- jobs -----------------------------------------------------------------------------------


def test_jobs_are_cli_command_lines(client: TestClient, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "media").mkdir(parents=True)
    (project / "media" / "a.mp4").write_bytes(CLIP.read_bytes())
    r = client.post("/api/jobs/extract", json={"inputs": ["media/a.mp4"]})
    assert r.status_code == 201
    job = r.json()
    assert job["kind"] == "extract" and job["argv"] == ["media/a.mp4", "-o", "facesets/a"]
    assert job["state"] == "queued"
    r = client.post("/api/jobs/train", json={"faceset_a": "nope", "faceset_b": "nope"})
    assert r.status_code == 400 and "no such" in r.json()["error"]
    assert client.post("/api/jobs/demo", json={}).status_code == 400
    r = client.post("/api/jobs/train", json={"model": "models/m", "iterations": "1; rm -rf /"})
    assert r.status_code == 400
    assert [j["id"] for j in client.get("/api/jobs").json()["jobs"]] == [job["id"]]
    assert client.post(f"/api/job/{job['id']}/cancel").json()["state"] == "cancelled"
    assert client.post(f"/api/job/{job['id']}/retry").json()["state"] == "queued"


def test_train_start_and_resume_arguments(tmp_path: Path) -> None:
    from facetwin.errors import UsageError
    from facetwin.studio.requests import train_argv

    p = Project.open(tmp_path)
    for name in ("a", "b"):
        (tmp_path / "facesets" / name).mkdir(parents=True)
    new = train_argv(p, {"faceset_a": "facesets/a", "faceset_b": "facesets/b", "iterations": 30})
    assert new[:6] == ["-m", "models/model", "-A", "facesets/a", "-B", "facesets/b"]
    assert new[new.index("--arch") + 1] == "lite" and new[new.index("--iterations") + 1] == "30"
    with pytest.raises(UsageError, match="no such model to resume"):
        train_argv(p, {"model": "models/m"})
    (tmp_path / "models" / "m").mkdir(parents=True)
    resume = train_argv(p, {"model": "models/m", "iterations": 500})
    assert resume[:2] == ["-m", "models/m"] and "-A" not in resume
    assert new[new.index("--lr") + 1] == "0.0005" and new[new.index("--loss") + 1] == "l1+ssim_half"
    from facetwin.cli import build_parser

    a = build_parser(["train"]).parse_args(["train", *new])
    assert (a.lr, a.schedule, a.warmup, a.loss) == (5e-4, "cosine", 100, "l1+ssim_half")
    bad = {"faceset_a": "facesets/a", "faceset_b": "facesets/b", "loss": "__import__('os')"}
    with pytest.raises(UsageError, match="loss"):
        train_argv(p, bad)
    with pytest.raises(UsageError, match="arch"):
        train_argv(p, {"faceset_a": "facesets/a", "faceset_b": "facesets/b", "arch": "x; ls"})


def test_events_stream_sends_the_jobs(client: TestClient, tmp_path: Path) -> None:
    from facetwin.studio.routes import snapshot

    project = tmp_path / "project"
    (project / "media").mkdir(parents=True)
    (project / "media" / "a.mp4").write_bytes(CLIP.read_bytes())
    client.post("/api/jobs/extract", json={"inputs": ["media/a.mp4"]})
    doc = snapshot(client.app.state.studio)  # type: ignore[attr-defined]
    assert [j["kind"] for j in doc["jobs"]] == ["extract"]


# -- views' data ----------------------------------------------------------------------------


def test_training_status_from_the_trainers_files(tmp_path: Path) -> None:
    from facetwin.studio import training

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"iterations": 1000, "arch": "lite"}))
    lines = [
        {"iteration": 10 * i, "elapsed": 2.0 * i, "loss_a": 0.5 - i / 100, "loss_b": 0.4}
        for i in range(1, 11)
    ]
    (model / "loss.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"iter')
    st = training.status(model)
    assert st.iteration == 100 and st.target == 1000
    assert st.iterations_per_s == pytest.approx(5.0)
    assert st.seconds_left == pytest.approx(180.0)
    assert st.settings[0]["name"] == "arch" and "lite" in st.settings[0]["meaning"]
    curve = training.curve(training.read_log(model))
    assert curve["iteration"][-1] == 100 and len(curve["loss_a"]) == 10


def test_report_verdicts_from_the_catalogue(tmp_path: Path) -> None:
    from facetwin.studio.reports import read_report

    metrics = {
        "identity": {"id_retrieval": 1.0, "nearer_b_by": 0.05},
        "blending": {"sharpness_ratio": 0.36},
        "temporal": {"landmark_jitter_ratio": 1.05, "flicker_in": 2.0},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    doc = read_report(tmp_path)
    by = {f["key"]: f for f in doc["figures"]}
    assert by["id_retrieval"]["verdict"] == "good" and by["id_retrieval"]["value"] == "100%"
    assert by["nearer_b_by"]["verdict"] == "poor"
    assert "misses the goal >= 0.10" in by["nearer_b_by"]["sentence"]
    assert by["sharpness_ratio"]["verdict"] == "poor"
    assert by["landmark_jitter_ratio"]["verdict"] == "good"
    assert by["flicker_in"]["verdict"] == "info"
    assert (doc["good"], doc["judged"]) == (2, 4)


def test_merge_settings_are_convert_flags(tmp_path: Path) -> None:
    s = MergeSettings.from_json({"erode": 0.1, "blend": "poisson", "occlusion": False, "x": 1})
    argv = convert_argv("media/a.mp4", "models/m", "outputs/a.mp4", s)
    assert argv[:5] == ["media/a.mp4", "-m", "models/m", "-o", "outputs/a.mp4"]
    assert "--no-occlusion" in argv and argv[argv.index("--erode") + 1] == "0.1"
    path = settings_file(tmp_path / "a.mp4", argv, s)
    doc = json.loads(path.read_text())
    assert path.name == "a.mp4.convert.json" and doc["command"][:2] == ["facetwin", "convert"]
    assert MergeSettings(**doc["settings"]) == s
    # the flags parse back into the same settings with the real CLI parser
    from facetwin.cli import build_parser

    a = build_parser(["convert"]).parse_args(["convert", *argv])
    assert (a.erode, a.blend, a.no_occlusion, a.feather) == (0.1, "poisson", True, 0.03)
    for bad in ({"erode": "0.1"}, {"erode": 0.7}, {"blend": "nope"}, {"occlusion": 1}):
        with pytest.raises(Exception):  # noqa: B017 - ValueError or UsageError
            MergeSettings.from_json(bad)


def test_studio_command_is_wired() -> None:
    from facetwin.cli import build_parser

    a = build_parser(["studio"]).parse_args(["studio", "proj", "--port", "9", "--host", "::1"])
    assert (a.project, a.port, a.host) == ("proj", 9, "::1")


def test_other_interfaces_get_a_printed_token(tmp_path: Path) -> None:
    from facetwin.studio.server import ServerConfig, build, url_for

    studio, access, port = build(ServerConfig(tmp_path, host="127.0.0.1", run_jobs=False))
    assert access.token is None and port > 0
    assert url_for("127.0.0.1", port, None) == f"http://127.0.0.1:{port}/"
    _, wide, port = build(ServerConfig(tmp_path, host="0.0.0.0", port=8766, run_jobs=False))
    assert wide.token and port == 8766
    assert url_for("0.0.0.0", port, wide.token).endswith(f":8766/?token={wide.token}")
    assert build(ServerConfig(tmp_path, host="0.0.0.0", run_jobs=False))[1].token != wide.token
