"""Small faces in video (issue 16): a real clip shrunk to phone/CCTV size, faces ~50 px.

HOG's window is 80 px, so without the 2x retry the default detector found none of these frames.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import MAN, MAN_NOFACE
from facetwin.cli import main
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.faceset import FaceSet
from facetwin.media.video import resize_video

pytestmark = pytest.mark.slow


def face_frames(path: Path) -> dict[int, int]:
    with FaceSet.open(path) as fs:
        return dict(fs.conn.execute("SELECT frame, faces FROM frames"))


def test_default_extract_finds_50_px_faces_in_every_frame(tmp_path: Path) -> None:
    clip = resize_video(MAN, tmp_path / "man_176.mp4", 176)  # 176x100, the face ~50 px wide
    out = tmp_path / "fs"
    s = extract([clip], out, ExtractConfig(progress=False))
    assert s.frames == 72 and sum(face_frames(out).values()) == 72
    with FaceSet.open(out) as fs:
        widths = [r.box[2] - r.box[0] for r in fs.faces()]
    assert max(widths) < 60


def test_no_false_alarm_on_small_faceless_frames(tmp_path: Path) -> None:
    clip = resize_video(
        MAN_NOFACE, tmp_path / "noface_264.mp4", 264
    )  # the cartoon part has no face
    out = tmp_path / "fs"
    extract([clip], out, ExtractConfig(progress=False))
    frames = face_frames(out)
    assert all(frames[i] == 1 for i in range(72)), "the man's frames"
    assert sum(frames[i] for i in range(72, 169)) == 0, "a face in the cartoon"


def test_convert_takes_the_extract_detector(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(
        [
            "convert",
            str(MAN),
            "-m",
            str(tmp_path),
            "-o",
            str(tmp_path / "x.mp4"),
            "--detector",
            "no-such-detector",
        ]
    )
    assert code == 2 and "no-such-detector" in capsys.readouterr().err
