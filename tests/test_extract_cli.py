"""What `facetwin extract` says (issue 16's smaller items): any image OpenCV reads, photos
without a face named, no empty video bar for photos, "already extracted" on a rerun."""

from __future__ import annotations

from pathlib import Path

import cv2

from conftest import DATA, MAN_NOFACE
from facetwin.cli import main
from facetwin.media.video import iter_frames


def test_photos_only_run_and_its_rerun(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    face = tmp_path / "man.ppm"  # the bundled photo, as a portable pixmap
    cv2.imwrite(str(face), cv2.imread(str(DATA / "images" / "single_face.jpg")))
    cartoon = tmp_path / "cartoon.png"  # a real frame of the cartoon part: no human face
    frame = next(f for i, f in iter_frames(MAN_NOFACE) if i == 150)
    cv2.imwrite(str(cartoon), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out = tmp_path / "fs"

    assert main(["extract", str(face), str(cartoon), "-o", str(out)]) == 0
    text = capsys.readouterr()
    assert "1 faces" in text.out and "frames/s" in text.out
    assert f"no face in 1 photos: {cartoon}" in text.out
    assert "video" not in text.err  # no empty video progress bar

    assert main(["extract", str(face), str(cartoon), "-o", str(out)]) == 0
    again = capsys.readouterr().out
    assert again.startswith("already extracted: 1 faces") and "frames/s" not in again


def test_plugin_setting_options_fill_one_dict() -> None:
    """Each ``--<plugin>-<setting>`` lands in ``plugin_settings``, parsed as its declared type;
    none given leaves it None (the config's empty dict: every plugin on its defaults)."""
    from facetwin.cli import build_parser

    argv = ["extract", "x.jpg", "-o", "fs", "--detector", "mtcnn", "--mtcnn-threshold", "0.8",
            "--mtcnn-min-face", "40", "--dlib-cnn-refine", "no"]  # fmt: skip
    a = build_parser(argv).parse_args(argv)
    assert a.plugin_settings == {
        "mtcnn": {"threshold": 0.8, "min_face": 40.0},
        "dlib-cnn": {"refine": False},
    }
    argv = ["extract", "x.jpg", "-o", "fs"]
    assert build_parser(argv).parse_args(argv).plugin_settings is None


def test_a_setting_of_a_detector_not_chosen_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """It would silently do nothing: one line, exit 2, and no face set folder made."""
    out = tmp_path / "fs"
    photo = str(DATA / "images" / "single_face.jpg")
    assert main(["extract", photo, "-o", str(out), "--mtcnn-threshold", "0.8"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "facetwin: error: --mtcnn-threshold is a setting of mtcnn, which this run does not use\n"
    )
    assert not out.exists()
