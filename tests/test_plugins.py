"""Plugins: adding a detector, an architecture, a blend mode, a colour matcher or a metric is
adding one file.

A plugin from outside facetwin - a module in a temporary folder, named in FACETWIN_PLUGINS -
shows up in the command's ``--help`` and its choices, and runs: a real detector (OpenCV's
Haar cascade, shipped inside opencv-python) extracts the bundled photo, an architecture
trains, and a metric is computed by ``facetwin eval`` on a real clip and shown in its report.
Inside facetwin, a plugin package imports every module beside its ``__init__``.

A plugin's own settings (``Setting``) become ``--<plugin>-<setting>`` options and reach its
factory through the stage's config: the Haar detector's minimum face size from a temporary
module, and real plugins' settings (MTCNN's cut-off, Poisson's clone mode, hist's strength)
change real runs on real photos.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import av
import cv2
import numpy as np
import pytest
import torch

from conftest import DATA, MAN
from facetwin.cli import main
from facetwin.convert import ConvertConfig, convert
from facetwin.convert.swap import SwapModel
from facetwin.errors import UsageError
from facetwin.faceset import FaceSet
from facetwin.registry import Registry, Setting, import_plugins, recorded_settings

PLUGIN = '''
"""Test plugins registered from outside facetwin."""
import cv2
import numpy as np

from facetwin.convert.blend import BLENDERS
from facetwin.convert.color import COLOR_MATCHERS
from facetwin.eval.catalog import Figure
from facetwin.eval.measures import Chart, Measure, Section, register
from facetwin.extract.detectors import DETECTORS
from facetwin.extract.detectors.base import Detection
from facetwin.registry import Setting
from facetwin.train.models import ARCHITECTURES
from facetwin.train.models.lite import Lite


class HaarDetector:
    name = "opencv-haar"

    def __init__(self, device="cpu", min_size=40):
        self.cascade = cv2.CascadeClassifier(
            cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        )
        self.min_size = min_size

    def detect(self, image):
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        size = (self.min_size, self.min_size)
        found = self.cascade.detectMultiScale(grey, 1.1, 5, minSize=size)
        # Haar's box reaches above the brows; dlib's starts at them: move it to dlib's convention
        return [
            Detection(box=(x + 0.1 * w, y + 0.2 * h, x + 0.9 * w, y + h), score=1.0)
            for x, y, w, h in found
        ]


@DETECTORS.register(
    "opencv-haar",
    help="OpenCV Haar cascade (test plugin)",
    settings=(Setting("min_size", int, 40, "smallest face side, pixels (test setting)", low=8),),
)
def make_haar(device="cpu", min_size=40):
    return HaarDetector(device, min_size)


@ARCHITECTURES.register("lite-plugin", help="lite under another name (test plugin)")
class LitePlugin(Lite):
    name = "lite-plugin"


@BLENDERS.register("half", help="half swap, half original (test plugin)")
def blend_half(original, patch, params):
    return ((original.astype(np.uint16) + patch.face) // 2).astype(np.uint8)


@COLOR_MATCHERS.register("grey-world", help="mean colour of the target (test plugin)")
def match_grey(face, target, mask):
    return face


def face_size(inputs):
    """Eye-corner distance of each original face, in pixels."""
    per = {id(p): {"test_iod": p.iod} for p in inputs.pairs}
    mean = float(np.mean([p.iod for p in inputs.pairs]))
    return Section({"faces": len(per), "iod_mean": mean}, per)


register(Measure(
    "face-size", "eye-corner distance of the faces (test plugin)", "face_size", face_size,
    columns=("test_iod",),
    figures=(Figure("face_size", "iod_mean", "face size, IOD in pixels (test plugin)",
                    "larger = nearer the camera", "{:.1f}"),),
    charts=(Chart("Face size per frame (test plugin)", "pixels", {"IOD": "test_iod"}),),
))
'''


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "facetwin_test_plugins.py").write_text(PLUGIN)
    path = os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])
    return {
        **os.environ,
        "PYTHONPATH": path,
        "FACETWIN_PLUGINS": "facetwin_test_plugins",
        "OMP_NUM_THREADS": "1",
    }


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "facetwin.cli", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_external_plugins_appear_in_help(plugin_env):
    for command, name, text in (
        ("extract", "opencv-haar", "OpenCV Haar cascade (test plugin)"),
        (
            "extract",
            "--opencv-haar-min-size",
            "smallest face side, pixels (test setting) (40; >= 8)",
        ),
        ("convert", "opencv-haar", "OpenCV Haar cascade (test plugin)"),
        ("convert", "--opencv-haar-min-size", "smallest face side, pixels (test setting)"),
        ("convert", "half", "half swap, half original"),
        ("convert", "grey-world", "mean colour of the target"),
        ("train", "lite-plugin", "lite under another name"),
        ("eval", "face-size", "eye-corner distance of the faces (test plugin)"),
    ):
        r = cli([command, "--help"], plugin_env)
        assert r.returncode == 0, r.stderr
        help_text = " ".join(r.stdout.split())  # argparse wraps lines
        assert name in help_text and text in help_text, (command, name)
        # without the plugin the name is not a choice
        r = cli([command, "--help"], {**plugin_env, "FACETWIN_PLUGINS": ""})
        assert name not in r.stdout


def test_external_detector_extracts_a_real_photo(plugin_env, tmp_path):
    out = tmp_path / "fs"
    r = cli(["extract", str(DATA / "images" / "single_face.jpg"), "-o", str(out), "-q",
             "--detector", "opencv-haar"], plugin_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    with FaceSet.open(out) as fs:
        faces = fs.faces()
    assert len(faces) == 1
    # the landmarks sit inside the photo and span a face, not a corner of the box
    lm = faces[0].landmarks
    assert lm.shape == (68, 2) and (lm.max(0) - lm.min(0)).min() > 50


def test_an_external_plugins_setting_reaches_it_and_is_recorded(plugin_env, tmp_path):
    """``--opencv-haar-min-size`` reaches the factory through ExtractConfig: above the face's
    size (about 240 px here, 480 in extract's 2x retry of a photo under 800 px) the photo has no
    face; below it the face is found and the face set records the value, so a rerun with
    another value is refused rather than mixed in."""
    photo = str(DATA / "images" / "single_face.jpg")
    r = cli(["extract", photo, "-o", str(tmp_path / "big"), "-q", "--detector", "opencv-haar",
             "--opencv-haar-min-size", "1000"], plugin_env)  # fmt: skip
    assert r.returncode == 4 and "no face" in r.stderr, r.stderr
    out = tmp_path / "small"
    r = cli(["extract", photo, "-o", str(out), "-q", "--detector", "opencv-haar",
             "--opencv-haar-min-size", "120"], plugin_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    with FaceSet.open(out) as fs:
        assert len(fs.faces()) == 1
        assert fs.settings()["plugin_settings"] == {"opencv-haar": {"min_size": 120}}
    r = cli(["extract", photo, "-o", str(out), "-q", "--detector", "opencv-haar"], plugin_env)
    assert r.returncode == 2 and "other settings (plugin_settings)" in r.stderr
    r = cli(["extract", photo, "-o", str(out), "--opencv-haar-min-size", "4"], plugin_env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "facetwin: error: argument --opencv-haar-min-size: must be at least 8, not 4 "
        "(see facetwin extract --help)"
    ]


def test_external_architecture_trains(plugin_env, faceset_woman, faceset_man, tmp_path):
    model = tmp_path / "model"
    r = cli(["train", "-A", str(faceset_woman), "-B", str(faceset_man), "-m", str(model), "-q",
             "--arch", "lite-plugin", "--iterations", "2", "--batch", "2", "--device", "cpu"],
            plugin_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert '"arch": "lite-plugin"' in (model / "config.json").read_text()


def short_clip(path, frames: int = 8):
    """The first frames of the man's clip, lossless (as tests/test_eval.py makes its clips)."""
    with av.open(str(MAN)) as src, av.open(str(path), "w") as out:
        stream = None
        for i, frame in enumerate(src.decode(video=0)):
            if i == frames:
                break
            rgb = frame.to_ndarray(format="rgb24")
            if stream is None:
                stream = out.add_stream("libx264rgb", rate=30)
                stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
                stream.options = {"crf": "0", "preset": "ultrafast"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_external_metric_is_computed_and_reported(plugin_env, tmp_path):
    """A metric from a plugin module runs in a default eval (every metric) and alone
    (``--metrics``): its section of metrics.json holds its figure and its per-frame column,
    report.html shows the figure in its table and its chart, and the command prints it."""
    clip = short_clip(tmp_path / "clip.mp4")
    r = cli(["eval", str(clip), str(clip), "-o", str(tmp_path / "all"), "-q"], plugin_env)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "all" / "metrics.json").read_text())
    iods = [row["test_iod"] for row in m["per_frame"]]
    assert len(iods) == 8 and min(iods) > 20  # a real face, eye corners tens of pixels apart
    assert m["face_size"] == {"faces": 8, "iod_mean": pytest.approx(np.mean(iods), abs=1e-5)}
    assert m["identity"]["id_retrieval_a"] is None  # the built-in metrics ran beside it
    assert m["temporal"]["flicker_ratio"] == 1.0 and "face-size" in m["config"]["metrics"]
    html = (tmp_path / "all" / "report.html").read_text()
    assert "face size, IOD in pixels (test plugin)" in html and "larger = nearer" in html
    assert f"{m['face_size']['iod_mean']:.4g}" in html
    assert "Face size per frame (test plugin)" in html
    assert '"face_size"' in r.stdout

    r = cli(["eval", str(clip), str(clip), "-o", str(tmp_path / "one"), "-q",
             "--metrics", "face-size"], plugin_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert one["face_size"] == m["face_size"] and one["config"]["metrics"] == ["face-size"]
    assert one["identity"] is one["temporal"] is one["blending"] is None
    assert "Pose error" not in (tmp_path / "one" / "report.html").read_text()


def test_a_plugin_that_cannot_be_imported_is_one_line(plugin_env):
    r = cli(["extract", "--help"], {**plugin_env, "FACETWIN_PLUGINS": "no_such_plugin_module"})
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "facetwin: error: plugin 'no_such_plugin_module' could not be imported: "
        "No module named 'no_such_plugin_module'"
    ]


def test_unknown_choice_is_one_line(plugin_env):
    r = cli(["convert", "in.mp4", "-m", "m", "-o", "o.mp4", "--blend", "nope"], plugin_env)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "'half'" in r.stderr


def test_a_plugin_package_imports_every_module_beside_it(tmp_path, monkeypatch):
    """The in-package rule: a new file in the package is a registered plugin, no list edited."""
    pkg = tmp_path / "myplugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from facetwin.registry import Registry, import_plugins
        THINGS = Registry("thing")
        import_plugins(__name__)
    """))  # fmt: skip
    for name in ("alpha", "beta", "base"):
        (pkg / f"{name}.py").write_text(textwrap.dedent(f'''
            from myplugins import THINGS

            @THINGS.register("{name}")
            def make():
                """The {name} thing."""
        '''))  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    import myplugins  # type: ignore[import-not-found]

    registry: Registry = myplugins.THINGS
    assert registry.names() == ["alpha", "beta"]  # base.py is the contract, not a plugin
    assert registry.describe("beta") == "alpha: The alpha thing; beta: The beta thing (default)"
    import_plugins("myplugins")  # importing again registers nothing twice
    assert registry.names() == ["alpha", "beta"]


def test_a_metric_declares_a_contract_it_can_keep():
    """A measure that needs what eval cannot give, or puts a figure in another section than
    its own, fails when its file is imported, not in a run."""
    from facetwin.eval.catalog import Figure
    from facetwin.eval.measures import Measure, Section

    def nothing(inputs: object) -> Section:
        return Section({})

    with pytest.raises(ValueError, match="unknown needs"):
        Measure("x", "x", "x", nothing, needs=frozenset({"depth"}))
    with pytest.raises(ValueError, match="not in 'x'"):
        Measure("x", "x", "x", nothing, figures=(Figure("identity", "x_mean", "x"),))


# -- plugin settings ---------------------------------------------------------------------------


def test_settings_are_checked_against_their_declaration():
    """Values reach the factory as keywords, checked against the declared type, choices and
    range with one-line errors naming the option; records keep only values off the default."""
    things: Registry = Registry("thing")
    declared = (
        Setting("level", float, 0.5, "how much", low=0.0, high=1.0),
        Setting("mode", str, "x", "which", choices=("x", "y")),
    )

    @things.register("a", help="a thing", settings=declared)
    def make(level: float = 0.5, mode: str = "x") -> tuple[float, str]:
        return level, mode

    @things.register("plain")
    def plain() -> None:
        """No settings."""

    assert things.bind("plain") is plain  # a plugin without settings runs as it always did
    assert things.bind("a")() == (0.5, "x")
    assert things.bind("a", {"level": 1, "mode": "y"})() == (1.0, "y")
    for given, message in (
        ({"level": 2}, "--a-level must be within 0..1, not 2.0"),
        ({"level": True}, "--a-level must be a number, not True"),
        ({"mode": "z"}, "--a-mode must be one of x, y, not 'z'"),
        ({"levle": 0.1}, "thing 'a' has no setting 'levle' (its settings: --a-level, --a-mode)"),
    ):
        with pytest.raises(UsageError) as e:
            things.resolve("a", given)
        assert str(e.value) == message
    assert recorded_settings({"a": {"level": 0.5}}, [(things, "a")]) == {}  # the default
    assert recorded_settings({"a": {"level": 0.25}}, [(things, "a")]) == {"a": {"level": 0.25}}
    with pytest.raises(UsageError, match="^--b-x is a setting of b, which this run does not use$"):
        recorded_settings({"b": {"x": 1}}, [(things, "a")])
    # a declaration that cannot work fails when the plugin's file is imported
    with pytest.raises(ValueError, match="takes no such keyword"):
        things.register("c", settings=declared[:1])(lambda: None)
    with pytest.raises(ValueError, match="at most 1"):
        Setting("level", float, 2.0, "how much", high=1.0)


def _faces(faceset):  # type: ignore[no-untyped-def]
    with FaceSet.open(faceset) as fs:
        return fs.faces()


def test_mtcnn_cut_off_changes_a_real_extraction(tmp_path, capsys):
    """``--mtcnn-threshold`` is O-Net's final cut-off. On the group photo (five faces) a cut-off
    between the third and fourth face's scores keeps exactly the three surest; on fr_obama.jpg
    MTCNN's published 0.7 lets back in the 0.77-score false face that the default 0.9 drops."""
    group = str(DATA / "images" / "multi_face.jpg")
    assert main(["extract", group, "-o", str(tmp_path / "all"), "-q", "--detector", "mtcnn"]) == 0
    scores = sorted((f.score for f in _faces(tmp_path / "all")), reverse=True)
    assert len(scores) == 5
    cut = (scores[2] + scores[3]) / 2
    assert main(["extract", group, "-o", str(tmp_path / "sure"), "-q", "--detector", "mtcnn",
                 "--mtcnn-threshold", repr(cut)]) == 0  # fmt: skip
    kept = sorted((f.score for f in _faces(tmp_path / "sure")), reverse=True)
    assert kept == pytest.approx(scores[:3], abs=1e-6)

    obama = str(DATA / "images" / "fr_obama.jpg")
    counts = []
    for name, extra in (("default", []), ("published", ["--mtcnn-threshold", "0.7"])):
        out = tmp_path / name
        assert main(["extract", obama, "-o", str(out), "-q", "--detector", "mtcnn", *extra]) == 0
        counts.append(len(_faces(out)))
    assert counts == [1, 2]


class Mirror(torch.nn.Module):
    """A 'model' that draws the face it is given mirrored: a real face, but another image, so
    blending and colour matching have something to do."""

    def __init__(self) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, side: str) -> torch.Tensor:
        return x.flip(-1)


def test_blend_and_colour_settings_reach_a_real_conversion(tmp_path):
    """Settings of the blender and the colour matcher go from ConvertConfig into the swap:
    ``poisson`` with ``mode=mixed`` gives another picture than its default (and the default
    given explicitly gives the same bytes as none given); ``hist`` at strength 0 leaves the
    model's colours, exactly as the ``none`` matcher does."""
    meta = {"arch": "mirror", "input_size": 128, "coverage": 1.6, "model_id": "mirror"}
    model = SwapModel(Mirror(), meta)
    photo = DATA / "images" / "single_face.jpg"

    def swapped(name: str, **kw) -> np.ndarray:  # type: ignore[no-untyped-def]
        out = tmp_path / f"{name}.png"
        convert(photo, model, out, ConvertConfig(label=False, occlusion=False, **kw))
        return cv2.imread(str(out))

    poisson = swapped("poisson", blend="poisson", color="none")
    normal = swapped("normal", blend="poisson", color="none",
                     plugin_settings={"poisson": {"mode": "normal"}})  # fmt: skip
    mixed = swapped("mixed", blend="poisson", color="none",
                    plugin_settings={"poisson": {"mode": "mixed"}})  # fmt: skip
    assert np.array_equal(poisson, normal)
    changed = np.abs(mixed.astype(int) - poisson).max(axis=2) > 8
    assert changed.sum() > 500  # a face's worth of pixels
    none = swapped("none", color="none")
    zero = swapped("zero", color="hist", plugin_settings={"hist": {"strength": 0.0}})
    full = swapped("full", color="hist")
    assert np.array_equal(zero, none) and not np.array_equal(full, none)
    with pytest.raises(UsageError, match="^--hist-strength must be within 0..1, not 2.0$"):
        swapped("bad", color="hist", plugin_settings={"hist": {"strength": 2}})
