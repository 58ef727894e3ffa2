"""Each command's arguments. Plugin options take their choices and help from the registries, and
each plugin's declared settings become ``--<plugin>-<setting>`` options (``plugin_options.py``),
so a new detector, architecture, blend mode, colour matcher or metric appears here without an
edit."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from facetwin.cli.plugin_options import plugin_options
from facetwin.registry import Registry


def names_in(registry: Registry[Any]) -> Callable[[str], tuple[str, ...]]:
    """An argparse ``type`` for a comma-separated list of ``registry``'s names. One value, not
    ``nargs="+"``: a list of words would swallow the positional arguments after it."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        unknown = [n for n in names if n not in registry] or ([] if names else [text])
        if unknown:
            choices = ", ".join(registry.names())
            raise argparse.ArgumentTypeError(
                f"unknown {registry.kind} {unknown[0]!r}; choose from: {choices}"
            )
        return names

    return parse


def args_extract(e: argparse.ArgumentParser) -> None:
    from facetwin.device import DEVICE_CHOICES

    e.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders, videos")
    e.add_argument("-o", "--output", required=True, metavar="FACESET", help="face set folder")
    from facetwin.extract.detectors import DETECTORS

    e.add_argument(
        "--detector",
        default="dlib-hog",
        choices=DETECTORS.names(),
        help=DETECTORS.describe("dlib-hog"),
    )
    _photo_detector(e, "photos")
    from facetwin.extract.landmarkers import DEFAULT_LANDMARKER, LANDMARKERS

    e.add_argument(
        "--landmarker",
        default=DEFAULT_LANDMARKER,
        choices=LANDMARKERS.names(),
        help=LANDMARKERS.describe(DEFAULT_LANDMARKER),
    )
    e.add_argument(
        "--hands-every",
        type=int,
        default=8,
        metavar="N",
        help="cut hands in front of a face out of its masks: a video face is searched every N-th "
        "frame and on every frame while a hand stays (8; 0 = no hand search, ~1.8x faster on a "
        "clip with hands)",
    )
    e.add_argument("--size", type=int, default=256, help="aligned face size in pixels (256)")
    e.add_argument(
        "--coverage",
        type=float,
        default=2.0,
        help="crop side in mean-face units: 1.0 tight central face .. 2.0 full face (2.0)",
    )
    e.add_argument("--every", type=int, default=1, help="use every N-th video frame (1)")
    e.add_argument("--ref", nargs="+", metavar="IMAGE", help="keep only faces of this person")
    e.add_argument("--threshold", type=float, default=0.6, help="identity distance (0.6)")
    e.add_argument(
        "--embed-every",
        type=int,
        default=10,
        help="frames a video track reuses its identity embedding for (10; 1 = every face)",
    )
    e.add_argument(
        "--embedder",
        default="torch",
        choices=("torch", "dlib"),
        help="identity network: facetwin's torch port of dlib's ResNet (default; same vectors, "
        "~7x faster) or dlib itself",
    )
    e.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    plugin_options(e, DETECTORS)
    _ray_options(e, "the extraction: one task per video or per 16 photos")


def photo_detector(a: argparse.Namespace) -> str:
    """``--photo-detector`` as the extract and convert configs take it ("" for none)."""
    return "" if a.photo_detector == "none" else str(a.photo_detector)


def _photo_detector(p: argparse.ArgumentParser, which: str) -> None:
    """--photo-detector, for extract and for convert (``which``: the photos it applies to)."""
    from facetwin.extract.detectors import DETECTORS

    p.add_argument(
        "--photo-detector",
        default="auto",
        choices=["auto", *DETECTORS.names(), "none"],
        help=f"{which} also get the faces this second detector finds that --detector missed, "
        "e.g. a face in sunglasses in a group photo (auto: mtcnn behind the default dlib-hog, "
        "none behind another --detector)",
    )


def args_info(i: argparse.ArgumentParser) -> None:
    i.add_argument("faceset", metavar="FACESET")
    i.add_argument("--json", action="store_true", help="machine-readable output")


def args_train(t: argparse.ArgumentParser) -> None:
    """The model, the run's length and its snapshots; then the recipe (:func:`_train_recipe`)."""
    from facetwin.train.models import ARCHITECTURES

    t.add_argument("-A", dest="faceset_a", metavar="FACESET_A", help="face set of identity A")
    t.add_argument("-B", dest="faceset_b", metavar="FACESET_B", help="face set of identity B")
    t.add_argument("-m", "--model", required=True, metavar="MODEL_DIR")

    t.add_argument(
        "--arch",
        choices=ARCHITECTURES.names(),
        help="model architecture; a new model is original unless given, a saved one keeps its "
        "own. " + ARCHITECTURES.describe("original"),
    )
    t.add_argument("--batch", type=int, help="faces per identity per step (16)")
    t.add_argument("--iterations", type=int, help="train until this iteration")
    t.add_argument("--minutes", type=float, help="train for this long")
    t.add_argument(
        "--save-every", type=int, metavar="N", help="write a snapshot every N iterations (500)"
    )
    t.add_argument(
        "--save-minutes",
        type=float,
        metavar="M",
        help="and at least every M minutes (5; 0: by iterations only); a clean stop always saves",
    )
    _train_recipe(t)


def _train_recipe(t: argparse.ArgumentParser) -> None:
    """How the model learns: crop, rate and schedule, loss, precision, data, device."""
    from facetwin.device import DEVICE_CHOICES
    from facetwin.train.config import AMP_CHOICES, MASK_CHOICES
    from facetwin.train.losses import TERMS

    t.add_argument("--coverage", type=float, help="training crop coverage (1.0 = tight face)")
    t.add_argument("--lr", type=float, help="peak learning rate (5e-5)")
    t.add_argument(
        "--schedule",
        choices=("constant", "cosine"),
        help="learning rate over the run: constant (default) or cosine (needs --iterations)",
    )
    t.add_argument("--warmup", type=int, help="iterations of linear learning-rate warm-up (0)")
    t.add_argument(
        "--loss",
        help="reconstruction loss: terms joined by + with optional weights, e.g. l1 (default), "
        "'l1+ssim', 'l1+0.5*ssim_half'. Terms: " + TERMS.describe("l1"),
    )
    t.add_argument(
        "--emphasis",
        type=float,
        metavar="X",
        help="extra loss weight over eyes and mouth (0; 2 makes them count 3x)",
    )
    t.add_argument(
        "--mask",
        choices=MASK_CHOICES,
        help="face mask of the mask_l1 loss term and the preview (extended)",
    )
    t.add_argument(
        "--amp",
        choices=AMP_CHOICES,
        help="mixed precision: auto (default) is bf16 on CUDA GPUs that have it, fp32 elsewhere",
    )
    t.add_argument("--workers", type=int, metavar="N", help="data loader processes (2)")
    t.add_argument(
        "--preview-every",
        type=int,
        metavar="N",
        help="preview.png every N iterations (250; 0: none)",
    )
    t.add_argument("--keep", type=int, metavar="N", help="snapshots kept on disk (3)")
    _train_split(t)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", default=None, choices=DEVICE_CHOICES)
    t.add_argument(
        "--gan",
        metavar="NAME=VALUE,...",
        help="gan arch loss settings, e.g. 'identity=0,adversarial=0.2' (docs/training.md)",
    )


def _train_split(t: argparse.ArgumentParser) -> None:
    """Which frames train, and for how long under the random warp."""
    t.add_argument(
        "--holdout",
        type=float,
        help="leave the last fraction of each clip's face frames out of training (0)",
    )
    t.add_argument(
        "--warp-off",
        type=float,
        metavar="F",
        help="train the last fraction F of --iterations without the random warp, for detail (0)",
    )


def args_convert(c: argparse.ArgumentParser) -> None:
    from facetwin.device import DEVICE_CHOICES

    c.add_argument("input", metavar="INPUT")
    c.add_argument("-m", "--model", required=True, metavar="MODEL_DIR")
    c.add_argument("-o", "--output", required=True, metavar="OUTPUT")
    c.add_argument("--direction", default="a2b", choices=("a2b", "b2a"))
    from facetwin.convert.blend import BLENDERS
    from facetwin.convert.color import COLOR_MATCHERS
    from facetwin.extract.detectors import DETECTORS

    c.add_argument(
        "--blend", default="mask", choices=BLENDERS.names(), help=BLENDERS.describe("mask")
    )
    c.add_argument(
        "--color",
        default="rct",
        choices=COLOR_MATCHERS.names(),
        help=COLOR_MATCHERS.describe("rct"),
    )
    c.add_argument("--crf", type=int, default=18, help="H.264 quality (18)")
    c.add_argument("--faceset", help="reuse this face set's smoothed landmarks")
    c.add_argument(
        "--detector",
        default="dlib-hog",
        choices=DETECTORS.names(),
        help="face detector when no --faceset is given (use the one the model's face sets were "
        "extracted with): " + DETECTORS.describe("dlib-hog"),
    )
    _photo_detector(c, "photos without --faceset (as extract does)")
    c.add_argument("--no-smooth", action="store_true", help="turn landmark smoothing off")
    _convert_blending(c)
    c.add_argument("--preview", type=int, metavar="N", help="write frame N only")
    c.add_argument("--side-by-side", action="store_true", help="original and swap side by side")
    c.add_argument(
        "--no-label",
        action="store_true",
        help="do not label the output as synthetic (prints a warning)",
    )
    c.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    c.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="torch threads for the model on a CPU (1; 0 = torch's choice): one face at a time "
        "gains little from more, and loses much when the cores are busy",
    )
    c.add_argument(
        "--segment-frames",
        type=int,
        default=240,
        metavar="N",
        help="frames per video segment: what a rerun resumes from, and one Ray task (240)",
    )
    _ray_options(c, "a video's frames pass: one task per segment")
    for registry in (BLENDERS, COLOR_MATCHERS, DETECTORS):
        plugin_options(c, registry)


def _ray_options(p: argparse.ArgumentParser, what: str) -> None:
    """``--ray [ADDRESS]`` and ``--ray-workers``: batch work on a Ray cluster (docs/scale.md)."""
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help=f"run {what} on Ray: a local cluster started for the run, or the running one at "
        "ADDRESS ('auto': the one on this machine); needs the [ray] extra",
    )
    p.add_argument(
        "--ray-workers",
        type=int,
        default=0,
        metavar="N",
        help="worker processes of the local Ray cluster (0: one per CPU core)",
    )


def _convert_blending(c: argparse.ArgumentParser) -> None:
    """How the drawn face goes into the frame: sharpening, the blend edge, whom to swap,
    occluders."""
    c.add_argument(
        "--sharpen",
        type=float,
        default=0.5,
        metavar="AMOUNT",
        help="unsharp mask on the drawn face once scaled into the frame (0..3, default 0.5; "
        "0 = off)",
    )
    c.add_argument(
        "--erode",
        type=float,
        default=0.06,
        metavar="F",
        help="pull the blend edge this far inside the face, as a fraction of the face crop (0.06)",
    )
    c.add_argument(
        "--feather",
        type=float,
        default=0.03,
        metavar="F",
        help="softness of the blend edge (mask blend), as a fraction of the face crop (0.03)",
    )
    c.add_argument(
        "--threshold",
        type=float,
        default=0.6,
        metavar="D",
        help="swap only faces this close to the model's source person (128-D distance, 0.6)",
    )
    c.add_argument(
        "--no-occlusion",
        action="store_true",
        help="paste the face over hands and other occluders too (skips one model pass a frame)",
    )
    c.add_argument(
        "--no-hands",
        action="store_true",
        help="do not look for hands in front of the face (the finder costs ~45 ms a face on "
        "every 8th frame and where the reconstruction sees an occluder)",
    )


def args_verify(v: argparse.ArgumentParser) -> None:
    v.add_argument("files", nargs="+", metavar="FILE")


def args_eval(ev: argparse.ArgumentParser) -> None:
    from facetwin.eval.measures import MEASURES

    ev.add_argument("original", metavar="ORIGINAL")
    ev.add_argument("swapped", metavar="SWAPPED")
    ev.add_argument("-m", "--model", metavar="MODEL_DIR")
    ev.add_argument("--faceset-a", metavar="A")
    ev.add_argument("--faceset-b", metavar="B")
    ev.add_argument("-o", "--output", metavar="REPORT_DIR")
    ev.add_argument(
        "--direction",
        default="a2b",
        choices=("a2b", "b2a"),
        help="the conversion's direction: which of the model's identities (-m) the original "
        "shows (default a2b)",
    )
    ev.add_argument(
        "--start-frame",
        type=int,
        default=0,
        metavar="N",
        help="video: compare from frame N on (e.g. the first frame held out of training)",
    )
    ev.add_argument(
        "--metrics",
        type=names_in(MEASURES),
        metavar="NAME[,NAME...]",
        help="measure only these, comma-separated (default: all; the sections of metrics.json "
        "of the others are null). " + MEASURES.describe(),
    )
    from facetwin.eval.config import STATEFUL_POSE
    from facetwin.extract.landmarkers import LANDMARKERS

    ev.add_argument(
        "--pose",
        default="auto",
        choices=("auto", "landmarks", *(n for n in LANDMARKERS.names() if n not in STATEFUL_POSE)),
        help="head pose of both faces: 'auto' (default: dlib-mesh-pose, MediaPipe's mesh, where "
        "the mediapipe wheel is installed, else 'landmarks'), 'landmarks' (a rigid fit of the 68 "
        "points) or a landmarker that measures it (docs/landmarks.md)",
    )


def args_demo(d: argparse.ArgumentParser) -> None:
    from facetwin.device import DEVICE_CHOICES

    d.add_argument("-o", "--output", default="demo_out", metavar="DIR")
    d.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="training iterations (the recipe's: 1500 on CPU)",
    )
    d.add_argument("--minutes", type=float, default=None, help="train for this long instead")
    d.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
