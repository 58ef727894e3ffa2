"""The bad-input matrix of issue 15: every command (extract, info, train, convert, verify, eval)
through the CLI, outside the test process, against missing, empty, truncated, wrong-type,
damaged, crafted, unwritable, full and concurrent inputs. Each must end with the documented exit
code, exactly one line on stderr and no traceback; a failed extract leaves no empty face set
behind, a failed convert no ``.parts``.

The inputs are real: one second of each bundled clip, face sets extracted from them and a
``lite`` model trained for two iterations (plumbing, not quality). The ~90 plain cases run
through ``facetwin.cli.main`` in two runner processes (RUNNER: each case with its own stderr
file at descriptor level, so native libraries' lines are caught too), since each fresh process
would spend ~2 s importing torch; a case of each command also runs as ``python -m facetwin.cli``
on its own. Disk-full faults are injected into the lowest writer of a real run (a file write
raising ENOSPC, SQLite's page limit) and, where root can mount one, hit on a real tmpfs;
concurrency uses real second processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import DATA, MAN, WOMAN, train_lite
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.lock import lock_path_for
from facetwin.media.video import copy_head, iter_frames

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
CLI = [sys.executable, "-m", "facetwin.cli"]
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0
UNWRITABLE = "/proc/nonexistent/x"  # cannot be created, not even by root


@dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.err.splitlines()


def run_cli(args: list[str], inject: str = "", timeout: float = 180) -> Result:
    """``facetwin ARGS`` in a new process; ``inject``: Python run first (fault injection)."""
    if inject:
        code = f"import sys, json\n{inject}\nfrom facetwin.cli import main\n"
        code += "sys.exit(main(json.loads(sys.argv[1])))"
        cmd = [sys.executable, "-c", code, json.dumps(args)]
    else:
        cmd = CLI + args
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout)
    return Result(p.returncode, p.stdout, p.stderr, time.perf_counter() - t0)


def assert_one_line(r: Result, code: int, text: str = "") -> str:
    """Exit ``code``, one stderr line from facetwin (containing ``text``), no traceback."""
    assert "Traceback" not in r.err, r.err
    assert r.code == code, (r.code, r.err)
    assert len(r.lines) == 1, r.err
    line = r.lines[0]
    assert line.startswith("facetwin: error:"), line
    assert text in line, line
    return line


# -- the inputs --------------------------------------------------------------------------------


def flip_middle(src: Path, dst: Path, n: int = 4000) -> Path:
    """``src`` with ``n`` bytes in its middle inverted (a damaged copy)."""
    b = bytearray(src.read_bytes())
    mid = len(b) // 2
    b[mid : mid + n] = bytes(x ^ 0xFF for x in b[mid : mid + n])
    dst.write_bytes(bytes(b))
    return dst


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 30) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def sql(faceset: Path, statement: str) -> None:
    with sqlite3.connect(faceset / "faceset.db") as c:
        c.execute(statement)
    c.close()


def damage_pages(faceset: Path) -> None:
    """Overwrite the middle of every database page after the first two (the schema stays)."""
    db = faceset / "faceset.db"
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    b = bytearray(db.read_bytes())
    rng = np.random.default_rng(15)
    for start in range(2 * 4096, len(b) - 4096, 4096):
        b[start + 100 : start + 3000] = rng.integers(0, 256, 2900, np.uint8).tobytes()
    db.write_bytes(bytes(b))


CRAFTED = {
    "box": "UPDATE faces SET box='not json' WHERE id=(SELECT MIN(id) FROM faces)",
    "version": "UPDATE meta SET value='one' WHERE key='schema_version'",
    "landmarks": "UPDATE faces SET landmarks=X'0102' WHERE id=(SELECT MIN(id) FROM faces)",
    "escape": "UPDATE faces SET file='../../../../../../../etc/passwd'",
    "settings": "UPDATE meta SET value='{\"size\": \"big\"' WHERE key='settings'",
    "frame": "UPDATE faces SET frame='soon' WHERE id=(SELECT MIN(id) FROM faces)",
    "table": "DROP TABLE faces",
}
CRAFTED_SETS = [f"fs_{k}" for k in CRAFTED]


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of good and bad inputs (names as used in CASES)."""
    w = tmp_path_factory.mktemp("failures")
    clip = copy_head(MAN, w / "clip.mp4", 1.0)  # 32 frames of the man, with audio
    copy_head(WOMAN, w / "clip_b.mp4", 1.0)  # 26 frames of the woman
    quiet = ExtractConfig(progress=False)
    extract([clip], w / "fs_a", quiet)
    extract([w / "clip_b.mp4"], w / "fs_b", quiet)
    photos = [DATA / "images" / n for n in ("fr_obama.jpg", "fr_obama2.jpg")]
    extract(photos, w / "fs_two", quiet)  # a face set of two faces
    train_lite(w / "fs_a", w / "fs_b", w / "model", 2, batch=2)
    # videos: empty, text, truncated (the index is at the end), damaged, another frame size
    (w / "empty.mp4").write_bytes(b"")
    (w / "text.mp4").write_text("not a video\n")
    (w / "trunc.mp4").write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    flip_middle(clip, w / "flipped.mp4")
    small = [f[::2, ::2] for _, f in iter_frames(clip)]
    write_clip(w / "small.mp4", small)
    # images: a face, no face, damaged, truncated, text, empty, unknown type
    shutil.copy(DATA / "images" / "single_face.jpg", w / "face.jpg")
    from facetwin.media.image import write_image

    write_image(w / "grey.png", np.full((240, 320, 3), 128, np.uint8))
    sheet = (w / "fs_a" / "contact_sheet.png").read_bytes()
    flip_middle(w / "fs_a" / "contact_sheet.png", w / "flipped.png", 200)
    (w / "trunc.png").write_bytes(sheet[: len(sheet) // 2])
    (w / "text.jpg").write_text("not an image\n")
    (w / "gif.jpg").write_bytes(b"GIF89a" + bytes(10))  # OpenCV logs an [ERROR] line for it
    (w / "empty.png").write_bytes(b"")
    (w / "notes.txt").write_text("hello\n")
    (w / "empty_dir").mkdir()
    (w / "a_file").write_text("a file, not a folder\n")
    # face sets: not a database, truncated, damaged pages, crafted values, a symlink out
    for name in ("fs_text", "fs_trunc", "fs_pages", "fs_symlink", "fs_nofile", *CRAFTED_SETS):
        shutil.copytree(w / "fs_a", w / name)
    (w / "fs_text" / "faceset.db").write_text("not a database\n")
    with sqlite3.connect(w / "fs_trunc" / "faceset.db") as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    db = w / "fs_trunc" / "faceset.db"
    db.write_bytes(db.read_bytes()[:6000])
    damage_pages(w / "fs_pages")
    for key, statement in CRAFTED.items():
        sql(w / f"fs_{key}", statement)
    sorted((w / "fs_nofile" / "faces").iterdir())[3].unlink()
    first = sorted((w / "fs_symlink" / "faces").iterdir())[0]
    first.unlink()
    first.symlink_to("/etc/hostname")
    # models: empty folder, a PNG named model.safetensors, damaged weights
    (w / "m_empty").mkdir()
    for name in ("m_png", "m_flipped"):
        shutil.copytree(w / "model", w / name)
    weights = next((w / "m_png").glob("snapshots/*/model.safetensors"))
    shutil.copy(DATA / "images" / "single_face.jpg", weights)
    weights = next((w / "m_flipped").glob("snapshots/*/model.safetensors"))
    flip_middle(weights, weights)
    return w


# -- the matrix --------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    args: str  # {w}: the inputs folder, {o}: an output path of this case's own
    code: int
    text: str = ""  # in the error line
    lines: int = 1  # stderr lines (verify's "no label" is a stdout line and exit 1)
    xfail: str = ""
    leaves_nothing: bool = False  # {o} must not exist afterwards


M = "-m {w}/model"
# fmt: off
CASES = [
    # extract: inputs checked before the face set exists; nothing left at -o when it fails
    Case("extract-missing", "extract {w}/missing.mp4 -o {o}", 3, "no such file", leaves_nothing=True),
    Case("extract-empty", "extract {w}/empty.mp4 -o {o}", 3, "empty file", leaves_nothing=True),
    Case("extract-truncated", "extract {w}/trunc.mp4 -o {o}", 3, leaves_nothing=True),
    Case("extract-wrong-type", "extract {w}/text.mp4 -o {o}", 3, "not a readable video", leaves_nothing=True),
    Case("extract-unknown-type", "extract {w}/notes.txt -o {o}", 3, "unknown extension", leaves_nothing=True),
    Case("extract-damaged-video", "extract {w}/flipped.mp4 -o {o}", 3, "corrupt", leaves_nothing=True),
    Case("extract-damaged-png", "extract {w}/flipped.png -o {o}", 3, "not a readable image", leaves_nothing=True),
    Case("extract-truncated-png", "extract {w}/trunc.png -o {o}", 3, "not a readable image", leaves_nothing=True),
    Case("extract-text-as-jpg", "extract {w}/text.jpg -o {o}", 3, "not a readable image", leaves_nothing=True),
    Case("extract-gif-as-jpg", "extract {w}/gif.jpg -o {o}", 3, "not a readable image", leaves_nothing=True),
    Case("extract-empty-folder", "extract {w}/empty_dir -o {o}", 3, "no images or videos", leaves_nothing=True),
    Case("extract-no-face", "extract {w}/grey.png -o {o}", 4, "no face found", leaves_nothing=True),
    Case("extract-ref-no-face", "extract {w}/clip.mp4 --ref {w}/grey.png -o {o}", 4, "reference", leaves_nothing=True),
    Case("extract-bad-size", "extract {w}/clip.mp4 --size 8 -o {o}", 2, "--size", leaves_nothing=True),
    Case("extract-bad-detector", "extract {w}/clip.mp4 --detector nope -o {o}", 2, leaves_nothing=True),
    Case("extract-unwritable", f"extract {{w}}/clip.mp4 -o {UNWRITABLE}", 5, "cannot create"),
    Case("extract-under-a-file", "extract {w}/clip.mp4 -o {w}/a_file/fs", 5, "cannot create"),
    Case("extract-into-damaged-set", "extract {w}/clip.mp4 -o {w}/fs_pages", 3, "damaged"),
    Case("extract-into-non-database", "extract {w}/clip.mp4 -o {w}/fs_text", 3, "not a readable face set"),
    Case("extract-into-crafted-version", "extract {w}/clip.mp4 -o {w}/fs_version", 3, "schema version"),
    # info: every read of a face set is checked
    Case("info-missing", "info {w}/missing", 3, "not a face set"),
    Case("info-empty-folder", "info {w}/empty_dir", 3, "not a face set"),
    Case("info-video", "info {w}/clip.mp4", 3, "not a face set"),
    Case("info-not-a-database", "info {w}/fs_text", 3, "not a readable face set"),
    Case("info-truncated-db", "info {w}/fs_trunc", 3, "fs_trunc"),
    Case("info-damaged-pages", "info {w}/fs_pages", 3, "damaged"),
    *[Case(f"info-crafted-{k}", f"info {{w}}/fs_{k}", 3, f"fs_{k}") for k in CRAFTED],
    # train: face sets are read, never locked; the model folder is the output
    Case("train-missing-set", "train -A {w}/missing -B {w}/fs_b -m {o} --arch lite", 3, "not a face set"),
    Case("train-video-as-set", "train -A {w}/clip.mp4 -B {w}/fs_b -m {o} --arch lite", 3, "not a face set"),
    Case("train-damaged-set", "train -A {w}/fs_pages -B {w}/fs_b -m {o} --arch lite", 3, "damaged"),
    Case("train-crafted-box", "train -A {w}/fs_box -B {w}/fs_b -m {o} --arch lite", 3, "box"),
    Case("train-crafted-escape", "train -A {w}/fs_escape -B {w}/fs_b -m {o} --arch lite", 3, "fs_escape"),
    Case("train-missing-face-file", "train -A {w}/fs_nofile -B {w}/fs_b -m {o} --arch lite", 3, "missing"),
    Case("train-symlink-out", "train -A {w}/fs_symlink -B {w}/fs_b -m {o} --arch lite", 3, "outside the face set"),
    Case("train-same-set-twice", "train -A {w}/fs_a -B {w}/fs_a -m {o} --arch lite", 2),
    Case("train-unwritable", f"train -A {{w}}/fs_a -B {{w}}/fs_b -m {UNWRITABLE} --arch lite", 5),
    Case("train-png-as-weights", "train -m {w}/m_png --iterations 4", 3, "model.safetensors"),
    Case("train-two-face-set", "train -A {w}/fs_a -B {w}/fs_two -m {o} --arch lite --iterations 2 --batch 2", 0, lines=0),
    Case("train-bad-batch", "train -A {w}/fs_a -B {w}/fs_b -m {o} --arch lite --batch 0", 2),
    Case("train-bad-workers", "train -A {w}/fs_a -B {w}/fs_b -m {o} --arch lite --workers -1", 2, "--workers"),
    Case("train-bad-amp", "train -A {w}/fs_a -B {w}/fs_b -m {o} --arch lite --amp half", 2, "--amp"),
    # convert
    Case("convert-missing", f"convert {{w}}/missing.mp4 {M} -o {{o}}.mp4", 3, "no such file"),
    Case("convert-bad-erode", f"convert {{w}}/clip.mp4 {M} -o {{o}}.mp4 --erode 0.7", 2, "--erode"),
    Case("convert-bad-threshold", f"convert {{w}}/clip.mp4 {M} -o {{o}}.mp4 --threshold 0", 2, "--threshold"),
    Case("convert-empty", f"convert {{w}}/empty.mp4 {M} -o {{o}}.mp4", 3, "empty file"),
    Case("convert-wrong-type", f"convert {{w}}/text.mp4 {M} -o {{o}}.mp4", 3, "not a readable video"),
    Case("convert-truncated", f"convert {{w}}/trunc.mp4 {M} -o {{o}}.mp4", 3),
    Case("convert-damaged-video", f"convert {{w}}/flipped.mp4 {M} -o {{o}}.mp4", 3, "corrupt"),
    Case("convert-damaged-png", f"convert {{w}}/flipped.png {M} -o {{o}}.png", 3, "not a readable image"),
    Case("convert-no-face", f"convert {{w}}/grey.png {M} -o {{o}}.png", 4, "no face"),
    Case("convert-missing-model", "convert {w}/clip.mp4 -m {w}/nope -o {o}.mp4", 3),
    Case("convert-empty-model", "convert {w}/clip.mp4 -m {w}/m_empty -o {o}.mp4", 3),
    Case("convert-png-as-weights", "convert {w}/clip.mp4 -m {w}/m_png -o {o}.mp4", 3, "model.safetensors"),
    Case("convert-damaged-weights", "convert {w}/clip.mp4 -m {w}/m_flipped -o {o}.mp4", 3, "model.safetensors"),
    Case("convert-damaged-faceset", f"convert {{w}}/clip.mp4 {M} --faceset {{w}}/fs_pages -o {{o}}.mp4", 3, "damaged"),
    Case("convert-crafted-faceset", f"convert {{w}}/clip.mp4 {M} --faceset {{w}}/fs_escape -o {{o}}.mp4", 3, "fs_escape"),
    Case("convert-unwritable-video", f"convert {{w}}/clip.mp4 {M} -o {UNWRITABLE}.mp4", 5, "cannot create"),
    Case("convert-unwritable-image", f"convert {{w}}/face.jpg {M} -o {UNWRITABLE}.png", 5, "cannot create"),
    Case("convert-unwritable-folder", f"convert {DATA}/images {M} -o {UNWRITABLE}", 5, "cannot create"),
    Case("convert-unwritable-preview", f"convert {{w}}/clip.mp4 {M} --preview 3 -o {UNWRITABLE}.png", 5),
    Case("convert-bad-container", f"convert {{w}}/clip.mp4 {M} -o {{o}}.avi", 2, ".avi"),
    Case("convert-video-into-a-file-folder", f"convert {{w}}/clip.mp4 {M} -o {{w}}/a_file/x.mp4", 5),
    # verify: 1 (and a stdout line) means "no label"; damaged files are exit 3
    Case("verify-missing", "verify {w}/missing.png", 3, "no such file"),
    Case("verify-empty-video", "verify {w}/empty.mp4", 3),
    Case("verify-empty-image", "verify {w}/empty.png", 3),
    Case("verify-wrong-type", "verify {w}/text.mp4", 3, "not a readable video"),
    Case("verify-text-as-jpg", "verify {w}/text.jpg", 3, "not a readable image"),
    Case("verify-truncated-video", "verify {w}/trunc.mp4", 3),
    Case("verify-damaged-video", "verify {w}/flipped.mp4", 3),
    Case("verify-damaged-png", "verify {w}/flipped.png", 3, "not a readable image"),
    Case("verify-truncated-png", "verify {w}/trunc.png", 3, "not a readable image"),
    Case("verify-unlabelled", "verify {w}/clip.mp4", 1, lines=0),
    # eval: two videos that cannot be a swap and its original are refused before any work
    Case("eval-missing", "eval {w}/missing.mp4 {w}/clip.mp4", 3, "no such file"),
    Case("eval-wrong-type", "eval {w}/text.mp4 {w}/clip.mp4", 3, "not a readable video"),
    Case("eval-truncated", "eval {w}/clip.mp4 {w}/trunc.mp4", 3),
    Case("eval-unrelated-videos", "eval {w}/clip.mp4 {w}/clip_b.mp4", 3, "frames"),
    Case("eval-issue-15-videos", f"eval {WOMAN} {MAN}", 3, "472"),
    Case("eval-other-size", "eval {w}/clip.mp4 {w}/small.mp4", 3, "size"),
    Case("eval-video-vs-image", "eval {w}/clip.mp4 {w}/face.jpg", 2, "two videos"),
    Case("eval-damaged-png", "eval {w}/flipped.png {w}/flipped.png", 3, "not a readable image"),
    Case("eval-start-past-end", "eval {w}/clip.mp4 {w}/clip.mp4 --start-frame 99", 2),
    Case("eval-damaged-faceset", "eval {w}/clip.mp4 {w}/clip.mp4 --faceset-a {w}/fs_pages", 3, "damaged"),
    Case("eval-unwritable", f"eval {{w}}/clip.mp4 {{w}}/clip.mp4 -o {UNWRITABLE}", 5, "cannot create"),
    Case("eval-report-under-a-file", "eval {w}/clip.mp4 {w}/clip.mp4 -o {w}/a_file/r", 5, "cannot create"),
]
# fmt: on


def _argv(case: Case, w: Path, out: Path) -> list[str]:
    """The case's command line, quiet (no progress bar on stderr)."""
    cmd, *rest = case.args.format(w=w, o=out).split()
    return [cmd, "-q", *rest]


#: Runs ``facetwin.cli.main`` - what the ``facetwin`` script runs - for one case after another
#: in one process, each with its own stdout and stderr *files* (descriptors 1 and 2, so what
#: native code writes is caught too) and the exit code ``python -m facetwin.cli`` would give.
#: Python and torch are imported once instead of 80 times (2 s each on a 2-core machine).
RUNNER = """
import json, os, sys, time, traceback
from facetwin.cli import main
results = {}
for cid, argv, out_file, err_file in json.loads(sys.argv[1]):
    sys.stdout.flush(); sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    for fd, name in ((1, out_file), (2, err_file)):
        f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(f, fd); os.close(f)
    t0 = time.perf_counter()
    try:
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's usage errors
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
        except BaseException:  # what an uncaught exception prints, and its exit status
            traceback.print_exc(); code = 1
    finally:
        sys.stdout.flush(); sys.stderr.flush()
        for fd, old in zip((1, 2), saved):
            os.dup2(old, fd); os.close(old)
    results[cid] = [code, time.perf_counter() - t0]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def matrix(w: Path) -> dict[str, tuple[Result, Path]]:
    """Every case through the CLI's entry point, in two runner processes side by side."""
    outs = w / "outputs"
    outs.mkdir()
    jobs = [
        [c.id, _argv(c, w, outs / c.id), str(outs / f"{c.id}.stdout"), str(outs / f"{c.id}.stderr")]
        for c in CASES
    ]

    def run(part: list[list[object]]) -> dict[str, list[float]]:
        cmd = [sys.executable, "-c", RUNNER, json.dumps(part)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        return json.loads(p.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(2) as pool:
        done: dict[str, list[float]] = {}
        for part in pool.map(run, [jobs[0::2], jobs[1::2]]):
            done.update(part)
    return {
        c.id: (
            Result(
                int(done[c.id][0]),
                (outs / f"{c.id}.stdout").read_text(),
                (outs / f"{c.id}.stderr").read_text(),
                done[c.id][1],
            ),
            outs / c.id,
        )
        for c in CASES
    }


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.xfail, strict=False)])
        if c.xfail
        else pytest.param(c, id=c.id)
        for c in CASES
    ],
)
def test_bad_input_gives_one_line_and_its_exit_code(matrix, case: Case) -> None:
    r, out = matrix[case.id]
    if case.lines == 0:
        assert r.code == case.code and r.err == "" and "Traceback" not in r.err, r.err
    else:
        assert_one_line(r, case.code, case.text)
    if case.leaves_nothing:
        assert not out.exists(), sorted(p.name for p in out.iterdir())
    if case.id.startswith("convert-"):
        assert not list(out.parent.glob("*.parts")), "a failed convert left its .parts"
    if case.id.startswith("train-") and case.code != 0:
        assert not (out / "config.json").exists(), "a failed new training left a config.json"


#: A case of each command as a process of its own, ``python -m facetwin.cli``: what a user runs.
OWN_PROCESS = [
    "extract-damaged-video",
    "info-damaged-pages",
    "train-crafted-box",
    "convert-unwritable-video",
    "verify-wrong-type",
    "eval-issue-15-videos",
]


@pytest.mark.parametrize("case", [c for c in CASES if c.id in OWN_PROCESS], ids=OWN_PROCESS)
def test_as_a_process_of_its_own(w: Path, tmp_path: Path, case: Case) -> None:
    out = tmp_path / "out"
    assert_one_line(run_cli(_argv(case, w, out)), case.code, case.text)
    if case.leaves_nothing:
        assert not out.exists()


def test_the_matrix_covers_every_command_and_kind() -> None:
    commands = {c.id.split("-")[0] for c in CASES}
    assert commands == {"extract", "info", "train", "convert", "verify", "eval"}
    kinds = ["missing", "empty", "truncated", "wrong-type", "damaged", "crafted", "unwritable"]
    for kind in kinds:
        assert any(kind in c.id for c in CASES), kind


def test_reading_a_face_set_never_leaves_it(w: Path) -> None:
    """A crafted file name (../../etc/passwd) or a symlink out of faces/ is refused by the
    library too, before anything is opened."""
    from facetwin.errors import InputError
    from facetwin.faceset import FaceSet

    with FaceSet.open(w / "fs_symlink") as fs:
        recs = fs.faces()
        with pytest.raises(InputError, match="outside the face set"):
            for rec in recs:
                fs.load_aligned(rec)
    with FaceSet.open(w / "fs_escape") as fs, pytest.raises(InputError, match="not a file name"):
        fs.faces()


@pytest.mark.skipif(ROOT_USER, reason="root writes into a 0o500 folder anyway")
def test_a_read_only_folder_is_exit_5(w: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        for args in (
            ["extract", "-q", str(w / "clip.mp4"), "-o", str(ro / "fs")],
            ["convert", "-q", str(w / "clip.mp4"), "-m", str(w / "model"), "-o", str(ro / "o.mp4")],
            ["eval", "-q", str(w / "clip.mp4"), str(w / "clip.mp4"), "-o", str(ro / "r")],
        ):
            assert_one_line(run_cli(args), 5)
    finally:
        ro.chmod(0o700)


# -- disk full: the lowest writer fails with ENOSPC, then the same command finishes ----------

ENOSPC = """
import errno, os, types
def _full(*a, **k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
class _FullFile:
    def __init__(self, f):
        self._f = f
    def __enter__(self):
        return self
    def __exit__(self, *a):
        self._f.close()
    def write(self, data):
        _full()
    def __getattr__(self, name):
        return getattr(self._f, name)
def failing_fdopen(module, after):
    '''module's os.fdopen: the first `after` files are written, then every write fails.'''
    count = [0]
    real = os.fdopen
    def fdopen(fd, *a, **k):
        count[0] += 1
        f = real(fd, *a, **k)
        return f if count[0] <= after else _FullFile(f)
    names = {k: getattr(os, k) for k in dir(os) if not k.startswith('__')}
    module.os = types.SimpleNamespace(**{**names, 'fdopen': fdopen})
"""


def fs_rows(faceset: Path) -> tuple[int, int]:
    with sqlite3.connect(faceset / "faceset.db") as c:
        faces = c.execute("SELECT COUNT(*) FROM faces WHERE bridged=0").fetchone()[0]
        frames = c.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    c.close()
    return faces, frames


@pytest.mark.slow
def test_disk_full_in_extract_sqlite_then_resume(w: Path, tmp_path: Path) -> None:
    """SQLite reports "database or disk is full" at the second batch of 32 frames (its page
    limit set to the pages it has): exit 5, the first batch kept; the rerun finishes."""
    inject = """
import facetwin.faceset as F
real = F.FaceSet.commit_frames
calls = [0]
def commit_frames(self, *a, **k):
    calls[0] += 1
    if calls[0] == 2:
        n = self.conn.execute('PRAGMA page_count').fetchone()[0]
        self.conn.execute(f'PRAGMA max_page_count = {n}')
    return real(self, *a, **k)
F.FaceSet.commit_frames = commit_frames
"""
    out = tmp_path / "fs"
    args = ["extract", "-q", str(MAN), "-o", str(out)]
    assert_one_line(run_cli(args, inject), 5, "database or disk is full")
    assert fs_rows(out) == (32, 32)
    r = run_cli(args)
    assert r.code == 0, r.err
    assert fs_rows(out) == (72, 72)


@pytest.mark.slow
def test_disk_full_in_extract_face_images_then_resume(w: Path, tmp_path: Path) -> None:
    """The aligned face PNGs fail to write after 40 (past the first commit): exit 5 naming the
    file, no temporary file left; the rerun finishes with every face."""
    inject = ENOSPC + "import facetwin.media.files as F\nfailing_fdopen(F, 40)\n"
    out = tmp_path / "fs"
    args = ["extract", "-q", str(MAN), "-o", str(out)]
    assert_one_line(run_cli(args, inject), 5, "No space left on device")
    assert not list((out / "faces").glob(".tmp-*"))
    assert fs_rows(out)[0] == 32
    r = run_cli(args)
    assert r.code == 0, r.err
    assert fs_rows(out) == (72, 72)
    assert len(list((out / "faces").glob("*.png"))) == 72


@pytest.mark.slow
def test_disk_full_in_convert_then_resume(w: Path, tmp_path: Path) -> None:
    """Video: the final remux fails (the segments are done): exit 5, the segments kept, the
    rerun reuses them. Image: the labelled output fails: exit 5, nothing half-written."""
    inject = """
import errno, os, av
real_open = av.open
class FullOutput:
    def __init__(self, c):
        self._c = c
    def mux(self, pkt):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    def __enter__(self):
        return self
    def __exit__(self, *a):
        self._c.close()
    def __getattr__(self, name):
        return getattr(self._c, name)
def failing_open(path, mode='r', *a, **k):
    c = real_open(path, mode, *a, **k)
    joined = mode == 'w' and '.parts' not in str(path)
    return FullOutput(c) if joined else c
av.open = failing_open
"""
    out = tmp_path / "o.mp4"
    args = ["convert", "-q", str(w / "clip.mp4"), "-m", str(w / "model"), "-o", str(out)]
    assert_one_line(run_cli(args, inject), 5, "No space left on device")
    assert not out.exists() and len(list((tmp_path / "o.mp4.parts").glob("seg_*.mp4"))) == 1
    r = run_cli(args)
    assert r.code == 0 and "resumed segments: 1" in r.out, r.err
    assert out.is_file() and not (tmp_path / "o.mp4.parts").exists()

    inject = ENOSPC + "import facetwin.media.files as F\nfailing_fdopen(F, 0)\n"
    img = tmp_path / "o.png"
    args = ["convert", "-q", str(w / "face.jpg"), "-m", str(w / "model"), "-o", str(img)]
    assert_one_line(run_cli(args, inject), 5, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png") == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert run_cli(args).code == 0 and img.is_file()


@pytest.mark.slow
def test_disk_full_in_eval_report_then_rerun(w: Path, tmp_path: Path) -> None:
    inject = ENOSPC + "import facetwin.media.files as F\nfailing_fdopen(F, 1)\n"
    rep = tmp_path / "rep"
    args = ["eval", "-q", str(w / "clip.mp4"), str(w / "clip.mp4"), "--start-frame", "28"]
    args += ["-o", str(rep)]
    assert_one_line(run_cli(args, inject), 5, "report.html")
    assert sorted(p.name for p in rep.iterdir()) == ["metrics.json"]  # whole, or not there
    r = run_cli(args)
    assert r.code == 0, r.err
    assert sorted(p.name for p in rep.iterdir()) == ["metrics.json", "report.html"]


@pytest.mark.slow
def test_disk_full_in_a_training_snapshot(w: Path, tmp_path: Path) -> None:
    inject = """
import errno, os
import facetwin.train.checkpoint as C
def full(*a, **k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
C.st_save_file = full
"""
    model = tmp_path / "m"
    args = ["train", "-q", "-A", str(w / "fs_a"), "-B", str(w / "fs_b"), "-m", str(model)]
    args += ["--arch", "lite", "--batch", "2", "--iterations", "2"]
    assert_one_line(run_cli(args, inject), 5)
    assert not list(model.glob("snapshots/.tmp-*"))
    assert run_cli(args).code == 0


def _can_mount_tmpfs(where: Path, size: str) -> bool:
    if not ROOT_USER or shutil.which("mount") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


@pytest.mark.slow
def test_a_really_full_disk_in_extract_and_convert(w: Path, tmp_path: Path) -> None:
    """A real 6 MB tmpfs (root and mount only): the disk fills while faces are written; once a
    filler file is deleted the same commands finish."""
    disk = tmp_path / "disk"
    if not _can_mount_tmpfs(disk, "6m"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * 4_500_000)  # the face set of the clip needs ~3 MB
        out = disk / "fs"
        args = ["extract", "-q", str(w / "clip.mp4"), "-o", str(out)]
        line = assert_one_line(run_cli(args), 5)
        assert "No space left on device" in line or "database or disk is full" in line
        filler.unlink()
        assert run_cli(args).code == 0
        assert fs_rows(out) == (32, 32)
        shutil.rmtree(out)
        filler.write_bytes(b"\0" * 5_800_000)  # ~0.5 MB left: convert needs ~0.7
        clip = ["convert", "-q", str(w / "clip.mp4"), "-m", str(w / "model")]
        assert_one_line(run_cli([*clip, "-o", str(disk / "o.mp4")]), 5)
        filler.unlink()
        r = run_cli([*clip, "-o", str(disk / "o.mp4")])
        assert r.code == 0, r.err
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# -- concurrent writers --------------------------------------------------------------------------


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )


def _wait_for_lock(target: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until ``proc`` holds ``target``'s lock (its PID is in the lock file)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:  # inside the folder once the run has made it
            if lock_path_for(target).read_text().strip() == str(proc.pid):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{proc.args} never took the lock of {target} ({proc.poll()})")


@pytest.mark.slow
def test_two_extracts_into_one_face_set(w: Path, tmp_path: Path) -> None:
    """The second writer exits 7 at once naming the first; reading the set (info) needs no lock;
    the first finishes unharmed with every face."""
    out = tmp_path / "fs"
    args = ["extract", "-q", str(WOMAN), "--every", "4", "-o", str(out)]
    first = _start(args)
    try:
        _wait_for_lock(out, first)
        second = run_cli(args)
        assert_one_line(second, 7, f"is in use by process {first.pid}")
        assert run_cli(["info", str(out)]).code == 0  # reading needs no lock
        assert first.wait(timeout=240) == 0, first.stderr.read() if first.stderr else ""
    finally:
        if first.poll() is None:
            first.kill()
    assert fs_rows(out) == (118, 118)


@pytest.mark.slow
def test_a_lock_left_by_a_killed_extract_does_not_block(w: Path, tmp_path: Path) -> None:
    out = tmp_path / "fs"
    args = ["extract", "-q", str(MAN), "-o", str(out)]
    first = _start(args)
    _wait_for_lock(out, first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert lock_path_for(out).read_text().strip() == str(first.pid)  # the stale lock is there
    r = run_cli(args)
    assert r.code == 0, r.err
    assert fs_rows(out) == (72, 72)


@pytest.mark.slow
def test_two_converts_to_one_output(w: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    args = ["convert", "-q", str(MAN), "-m", str(w / "model"), "-o", str(out)]
    first = _start(args)
    try:
        _wait_for_lock(out, first)
        assert_one_line(run_cli(args), 7, f"output {out} is in use by process {first.pid}")
        assert first.wait(timeout=240) == 0, first.stderr.read() if first.stderr else ""
    finally:
        if first.poll() is None:
            first.kill()
    assert sum(1 for _ in iter_frames(out)) == 72
    assert not (tmp_path / "o.mp4.parts").exists()
