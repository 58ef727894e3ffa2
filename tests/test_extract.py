"""Extract stage on the bundled real clips and photos: recall, identity, steadiness, resume."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import MAN, MAN_NOFACE, WOMAN
from facetwin.cli import main
from facetwin.errors import InputError, NoFaceError, UsageError
from facetwin.extract.info import faceset_info
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.face.align import (
    LEFT_EYE,
    RIGHT_EYE,
    alignment_matrix,
    recrop,
    template_pixels,
    umeyama,
    warp_face,
)
from facetwin.face.tracking import smooth_track
from facetwin.faceset import FaceSet
from facetwin.media.image import read_image, write_image


def frame_faces(path: Path) -> dict[int, int]:
    with FaceSet.open(path) as fs:
        return dict(fs.conn.execute("SELECT frame, faces FROM frames"))


# -- alignment maths ----------------------------------------------------------------------------


def test_umeyama_recovers_a_similarity() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (51, 2))
    a = 1.7 * np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    dst = src @ a.T + [12.0, -5.0]
    m = umeyama(src, dst)
    np.testing.assert_allclose(m[:, :2], a, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], [12.0, -5.0], atol=1e-7)


def test_alignment_puts_landmarks_on_the_mean_face(faceset_man: Path) -> None:
    with FaceSet.open(faceset_man) as fs:
        rec = fs.faces()[10]
        tmpl = template_pixels(fs.size, fs.coverage)
        err = np.linalg.norm(rec.landmarks_aligned[17:] - tmpl, axis=1).mean()
        # residual of a similarity fit: a few pixels of a 256 crop, not tens
        assert err < 0.03 * fs.size, err


def test_recrop_is_a_centre_crop(data_dir: Path) -> None:
    img = read_image(data_dir / "images" / "fr_obama.jpg")
    from facetwin.extract.detectors import create_detector
    from facetwin.extract.landmarks import landmarks_68

    box = create_detector("dlib-hog").detect(img)[0].box
    lm = landmarks_68(img, box)
    wide = warp_face(img, alignment_matrix(lm, 256, 2.0), 256)
    tight = warp_face(img, alignment_matrix(lm, 64, 1.0), 64)
    diff = np.abs(recrop(wide, 2.0, 1.0, 64).astype(int) - tight.astype(int)).mean()
    assert diff < 6, diff  # same face region; only resampling differs
    with pytest.raises(ValueError):
        recrop(wide, 2.0, 2.5, 64)


def test_smoothing_bridges_gaps_and_calms_noise(faceset_man: Path) -> None:
    with FaceSet.open(faceset_man) as fs:
        recs = [r for r in fs.faces() if r.source.endswith("single_face.mp4")]
    frames = np.array([r.frame for r in recs])
    lm = np.stack([r.landmarks for r in recs]).astype(np.float64)
    keep = ~np.isin(frames, [20, 21, 22, 50])  # knock out a 3-frame and a 1-frame dropout
    rng = np.random.default_rng(1)
    noisy = lm + rng.normal(0, 2.0, lm.shape)
    f_out, sm, bridged = smooth_track(frames[keep], noisy[keep])
    assert f_out.tolist() == frames.tolist()
    assert sorted(f_out[bridged].tolist()) == [20, 21, 22, 50]
    err_noisy = np.abs(noisy - lm).mean()
    err_smooth = np.abs(sm - lm).mean()
    assert err_smooth < 0.7 * err_noisy, (err_smooth, err_noisy)


# -- acceptance on the real clips --------------------------------------------------------------


def test_hog_recall_on_the_womans_clip(faceset_woman: Path) -> None:
    faces = frame_faces(faceset_woman)
    assert len(faces) == 472
    found = sum(1 for n in faces.values() if n >= 1)
    assert found / len(faces) >= 0.99, found


def test_hog_recall_on_the_mans_clips_and_none_on_the_cartoon(faceset_man: Path) -> None:
    with FaceSet.open(faceset_man) as fs:
        rows = list(
            fs.conn.execute(
                "SELECT s.path, f.frame, f.faces FROM frames f JOIN sources s ON s.id=f.source_id"
            )
        )
    man = [n for p, _, n in rows if p.endswith("single_face.mp4")]
    mov = {f: n for p, f, n in rows if p.endswith("face_noface.mov")}
    assert len(man) == 72 and sum(n >= 1 for n in man) / 72 >= 0.99
    assert len(mov) == 169
    # the man talks in frames 0-71, then a cartoon with no human face follows
    assert sum(mov[f] >= 1 for f in range(72)) / 72 >= 0.99
    assert sum(mov[f] for f in range(72, 169)) == 0


def test_aligned_eyes_are_steady_on_the_mans_clip(faceset_man: Path) -> None:
    with FaceSet.open(faceset_man) as fs:
        recs = [r for r in fs.faces() if r.source.endswith("single_face.mp4")]
        size = fs.size
    eyes = np.stack(
        [
            np.concatenate(
                [r.landmarks_aligned[RIGHT_EYE].mean(0), r.landmarks_aligned[LEFT_EYE].mean(0)]
            )
            for r in recs
        ]
    ).reshape(-1, 2, 2)
    step = np.linalg.norm(np.diff(eyes, axis=0), axis=2).max(axis=1) / size
    print(f"eye centre motion between frames: mean {step.mean():.4f}, max {step.max():.4f} of crop")
    assert step.max() < 0.015


def test_info_reports_faces_frames_and_one_identity(faceset_woman: Path) -> None:
    info = faceset_info(str(faceset_woman))
    assert info["faces"] >= 467 and info["frames"] == 472
    assert info["identities"] == 1
    assert (faceset_woman / "contact_sheet.png").stat().st_size > 10_000
    with FaceSet.open(faceset_woman) as fs:
        rec = fs.faces()[0]
        assert fs.load_aligned(rec).shape == (256, 256, 3)
        comp, ext = fs.load_mask(rec, "components"), fs.load_mask(rec, "extended")
        assert comp.dtype == np.uint8 and set(np.unique(comp)) <= {0, 255}
        # the extended mask reaches the forehead: it covers more, above the eyebrows
        assert ext.sum() > 1.1 * comp.sum()
        assert (ext[:100] > 0).sum() > (comp[:100] > 0).sum()
        assert rec.embedding is not None and rec.embedding.shape == (128,)


def test_clips_hold_two_people(faceset_woman: Path, faceset_man: Path) -> None:
    with FaceSet.open(faceset_woman) as a, FaceSet.open(faceset_man) as b:
        d = float(np.linalg.norm(a.mean_embedding() - b.mean_embedding()))  # type: ignore[operator]
    assert d > 0.6


@pytest.mark.slow
def test_identity_filter_separates_woman_and_man(tmp_path: Path) -> None:
    """One reference photo of the woman (a frame of her clip) keeps her and only her."""
    with av.open(str(WOMAN)) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 300).to_ndarray(
            format="rgb24"
        )
    ref = tmp_path / "woman.png"
    write_image(ref, frame)
    out = tmp_path / "fs"
    extract([WOMAN, MAN], out, ExtractConfig(refs=[str(ref)], every=3, progress=False))
    with FaceSet.open(out) as fs:
        kept = fs.faces()
    woman = [r for r in kept if r.source.endswith(WOMAN.name)]
    man = [r for r in kept if r.source.endswith(MAN.name)]
    assert len(man) == 0
    assert len(woman) == len(range(0, 472, 3))


def test_mtcnn_finds_the_45_degree_face(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "fs"
    s = extract(
        [data_dir / "images" / "45-m7-di-ph.jpg"],
        out,
        ExtractConfig(detector="mtcnn", progress=False),
    )
    assert s.faces == 1
    with FaceSet.open(out) as fs:
        assert abs(fs.faces()[0].yaw or 0) > 20


# -- crash safety ------------------------------------------------------------------------------


def _dump_with_files(path: Path) -> tuple[list, dict[str, str]]:
    with FaceSet.open(path) as fs:
        rows = fs.dump()
    files = {
        p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in (path / "faces").glob("*.png")
    }
    return rows, files


@pytest.mark.slow
def test_kill_9_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, faceset_woman: Path
) -> None:
    out = tmp_path / "fs"
    cmd = [sys.executable, "-m", "facetwin.cli", "extract", "-q", str(WOMAN), "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    next_frame = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            with sqlite3.connect(out / "faceset.db", timeout=1) as c:
                row = c.execute("SELECT next_frame FROM sources").fetchone()
            next_frame = row[0] if row else 0
        except sqlite3.Error:
            continue
        if next_frame >= 100:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < next_frame < 472, "the kill must land mid-video"
    assert main(["extract", "-q", str(WOMAN), "-o", str(out)]) == 0
    assert _dump_with_files(out) == _dump_with_files(faceset_woman)


# -- bad input: one line, an exit code, nothing lost --------------------------------------------


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda d: d / "missing.mp4", InputError.exit_code),
        (lambda d: (d / "empty.mp4").write_bytes(b"") or d / "empty.mp4", InputError.exit_code),
        (
            lambda d: (d / "junk.jpg").write_bytes(b"not an image") or d / "junk.jpg",
            InputError.exit_code,
        ),
        (lambda d: (d / "notes.txt").write_text("hi") or d / "notes.txt", InputError.exit_code),
        (
            lambda d: (
                (d / "trunc.mp4").write_bytes(WOMAN.read_bytes()[:800_000]) or d / "trunc.mp4"
            ),
            InputError.exit_code,
        ),
    ],
    ids=["missing", "zero-byte", "non-image", "unknown-type", "truncated"],
)
def test_bad_inputs_give_one_line_and_an_exit_code(tmp_path: Path, capsys, make, code) -> None:
    path = make(tmp_path)
    rc = main(["extract", "-q", str(path), "-o", str(tmp_path / "fs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == code
    assert len(err) == 1 and err[0].startswith("facetwin: error:"), err


def test_truncated_video_keeps_what_was_extracted(tmp_path: Path) -> None:
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(WOMAN.read_bytes()[:800_000])
    with pytest.raises(InputError, match="truncated"):
        extract([trunc], tmp_path / "fs", ExtractConfig(progress=False))
    assert FaceSet.open(tmp_path / "fs").counts()["faces"] > 100


def test_a_video_without_faces_says_so(tmp_path: Path) -> None:
    # the cartoon half of face_noface.mov, cut out with PyAV (real frames, re-encoded)
    cut = tmp_path / "cartoon.mp4"
    with av.open(str(MAN_NOFACE)) as src, av.open(str(cut), "w") as dst:
        s = dst.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 480, 270, "yuv420p"
        for i, f in enumerate(src.decode(video=0)):
            if i >= 100:
                img = f.to_ndarray(format="rgb24")[::2, ::2]
                for p in s.encode(
                    av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                ):
                    dst.mux(p)
        for p in s.encode():
            dst.mux(p)
    with pytest.raises(NoFaceError):
        extract([cut], tmp_path / "fs", ExtractConfig(progress=False))


def test_other_settings_on_an_existing_face_set_are_refused(tmp_path: Path, data_dir: Path) -> None:
    img = data_dir / "images" / "fr_obama.jpg"
    extract([img], tmp_path / "fs", ExtractConfig(progress=False))
    with pytest.raises(UsageError, match="size"):
        extract([img], tmp_path / "fs", ExtractConfig(size=128, progress=False))


def test_unwritable_output(tmp_path: Path, capsys, data_dir: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(
        ["extract", "-q", str(data_dir / "images" / "fr_obama.jpg"), "-o", str(blocker / "fs")]
    )
    assert rc != 0 and capsys.readouterr().err.count("\n") == 1


def test_info_json_and_cli(faceset_man: Path, capsys) -> None:
    assert main(["info", str(faceset_man), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["faces"] == 144 and info["frames"] == 72 + 169
