"""The ``facetwin`` command. It only parses arguments and calls the Python API.

Errors a user can cause end as one line on stderr and a non-zero exit code (see errors.py);
Ctrl-C keeps what was written and says how to resume.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from facetwin import __version__
from facetwin.errors import FacetwinError

CONSENT = (
    "Use facetwin only on faces of people who have given their consent. Every output is "
    "labelled as synthetic (metadata + invisible watermark) unless you pass --no-label."
)

EXIT_INTERRUPTED = 130
EXIT_DISK_FULL = 5
ArgsFn = Callable[[argparse.ArgumentParser], None]


def _cmd_extract(a: argparse.Namespace) -> int:
    from facetwin.extract.pipeline import ExtractConfig, extract

    cfg = ExtractConfig(
        detector=a.detector,
        size=a.size,
        coverage=a.coverage,
        every=a.every,
        refs=a.ref or [],
        threshold=a.threshold,
        device=a.device,
        embed_every=a.embed_every,
        embedder=a.embedder,
        progress=not a.quiet,
    )
    s = extract(a.inputs, a.output, cfg)
    held = f"{s.faces} faces (+{s.bridged} bridged) from {s.frames} frames of {s.sources} sources"
    if s.processed:
        print(f"{held} in {s.seconds:.1f} s ({s.frames_per_second:.1f} frames/s) -> {s.faceset}")
    else:
        print(f"already extracted: {held} -> {s.faceset}")
    if s.no_face:
        print(f"no face in {len(s.no_face)} photos: {', '.join(s.no_face[:5])}")
    if s.skipped:
        print(f"skipped {len(s.skipped)} unreadable files: {', '.join(s.skipped[:5])}")
    print(f"contact sheet: {s.faceset}/contact_sheet.png")
    return 0


def _cmd_info(a: argparse.Namespace) -> int:
    from facetwin.extract.info import faceset_info, format_info

    info = faceset_info(a.faceset)
    print(json.dumps(info, indent=2) if a.json else format_info(info))
    return 0


def _cmd_train(a: argparse.Namespace) -> int:
    from facetwin.train.trainer import TrainConfig, train

    kwargs = {
        k: v
        for k, v in {
            "faceset_a": a.faceset_a,
            "faceset_b": a.faceset_b,
            "arch": a.arch,
            "batch": a.batch,
            "iterations": a.iterations,
            "minutes": a.minutes,
            "device": a.device,
            "seed": a.seed,
            "coverage": a.coverage,
            "lr": a.lr,
            "loss": a.loss,
            "holdout": a.holdout,
            "save_every": a.save_every,
            "save_minutes": a.save_minutes,
            "emphasis": a.emphasis,
            "mask": a.mask,
            "amp": a.amp,
            "workers": a.workers,
            "preview_every": a.preview_every,
            "keep": a.keep,
        }.items()
        if v is not None
    }
    if a.schedule is not None or a.warmup is not None:
        from facetwin.train.config import read_saved_config
        from facetwin.train.schedule import LrSchedule

        saved = read_saved_config(Path(a.model))
        old = saved.schedule if saved else LrSchedule()
        kwargs["schedule"] = LrSchedule(
            kind=a.schedule if a.schedule is not None else old.kind,
            warmup=a.warmup if a.warmup is not None else old.warmup,
            final=old.final,
        )
    if a.gan:
        from facetwin.train.config import read_saved_config
        from facetwin.train.gan import GanLossConfig

        saved = read_saved_config(Path(a.model))
        kwargs["gan"] = GanLossConfig.parse(a.gan, saved.gan if saved else None)
    r = train(TrainConfig(model_dir=a.model, **kwargs), progress=not a.quiet)
    losses = f"loss A {r.loss_a:.4f} B {r.loss_b:.4f}" if r.loss_a is not None else "no step run"
    print(
        f"{r.arch}: iteration {r.iterations} (from {r.start_iteration}), {losses}, "
        f"{r.samples_per_s:.1f} samples/s, stopped on {r.stopped} -> {r.model_dir}"
    )
    print(f"preview: {r.model_dir}/preview.png  snapshot: {r.snapshot}")
    return 0


def _cmd_convert(a: argparse.Namespace) -> int:
    from facetwin.convert.pipeline import ConvertConfig, convert

    cfg = ConvertConfig(
        direction=a.direction,
        blend=a.blend,
        color=a.color,
        crf=a.crf,
        device=a.device,
        smooth=not a.no_smooth,
        preview=a.preview,
        side_by_side=a.side_by_side,
        label=not a.no_label,
        faceset=a.faceset,
        detector=a.detector,
        sharpen=a.sharpen,
        erode=a.erode,
        feather=a.feather,
        threshold=a.threshold,
        occlusion=not a.no_occlusion,
        progress=not a.quiet,
    )
    print(convert(a.input, a.model, a.output, cfg))
    return 0


def _cmd_verify(a: argparse.Namespace) -> int:
    from facetwin.label import DETECTION_THRESHOLD, verify

    code = 0
    for path in a.files:
        r = verify(path)
        marked = bool(r.watermark_found or r.metadata_tag)
        # the pooled score against its threshold says how clear the verdict is (7.6 = a false
        # alarm below 2.6e-7); malformed look-alike tags are counted, never printed
        odd = f", {r.malformed_tags} malformed tag(s) ignored" if r.malformed_tags else ""
        print(
            f"{path}: {'SYNTHETIC (facetwin label found)' if marked else 'no facetwin label'}"
            f" - watermark {'found' if r.watermark_found else 'not found'}"
            f" ({r.frames_marked}/{r.frames_checked} frames, score {r.pooled_score:.1f}"
            f" / {DETECTION_THRESHOLD}), metadata: {r.metadata_tag or 'none'}{odd}"
        )
        code = code or (0 if marked else 1)
    return code


def _cmd_eval(a: argparse.Namespace) -> int:
    from facetwin.eval import EvalConfig, evaluate

    m = evaluate(
        a.original,
        a.swapped,
        model_dir=a.model,
        faceset_a=a.faceset_a,
        faceset_b=a.faceset_b,
        output_dir=a.output,
        cfg=EvalConfig(progress=not a.quiet, start_frame=a.start_frame, direction=a.direction),
    )
    print(json.dumps(headline(m), indent=2, default=str))
    return 0


def headline(metrics: dict) -> dict:
    """The parts of an eval result a person reads first (per-frame curves are in the report)."""
    keys = ("frames", "identity", "attributes", "temporal", "blending")
    return {k: metrics[k] for k in keys if metrics.get(k) is not None}


def _cmd_demo(a: argparse.Namespace) -> int:
    from facetwin.demo import run_demo

    run_demo(a.output, iterations=a.iterations, device=a.device, minutes=a.minutes)
    return 0


def _args_extract(e: argparse.ArgumentParser) -> None:
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


def _args_info(i: argparse.ArgumentParser) -> None:
    i.add_argument("faceset", metavar="FACESET")
    i.add_argument("--json", action="store_true", help="machine-readable output")


def _args_train(t: argparse.ArgumentParser) -> None:
    from facetwin.device import DEVICE_CHOICES

    t.add_argument("-A", dest="faceset_a", metavar="FACESET_A", help="face set of identity A")
    t.add_argument("-B", dest="faceset_b", metavar="FACESET_B", help="face set of identity B")
    t.add_argument("-m", "--model", required=True, metavar="MODEL_DIR")
    from facetwin.train.config import AMP_CHOICES, MASK_CHOICES
    from facetwin.train.losses import TERMS
    from facetwin.train.models import ARCHITECTURES

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
    t.add_argument(
        "--holdout",
        type=float,
        help="leave the last fraction of each clip's face frames out of training (0)",
    )
    t.add_argument("--seed", type=int)
    t.add_argument("--device", default=None, choices=DEVICE_CHOICES)
    t.add_argument(
        "--gan",
        metavar="NAME=VALUE,...",
        help="gan arch loss settings, e.g. 'identity=0,adversarial=0.2' (docs/training.md)",
    )


def _args_convert(c: argparse.ArgumentParser) -> None:
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
    c.add_argument("--no-smooth", action="store_true", help="turn landmark smoothing off")
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
    c.add_argument("--preview", type=int, metavar="N", help="write frame N only")
    c.add_argument("--side-by-side", action="store_true", help="original and swap side by side")
    c.add_argument(
        "--no-label",
        action="store_true",
        help="do not label the output as synthetic (prints a warning)",
    )
    c.add_argument("--device", default="auto", choices=DEVICE_CHOICES)


def _args_verify(v: argparse.ArgumentParser) -> None:
    v.add_argument("files", nargs="+", metavar="FILE")


def _args_eval(ev: argparse.ArgumentParser) -> None:
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


def _args_demo(d: argparse.ArgumentParser) -> None:
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


#: command -> (what runs it, its one-line help, what adds its arguments)
COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, ArgsFn]] = {
    "extract": (
        _cmd_extract,
        "Find, align and store every face of photos and videos.",
        _args_extract,
    ),
    "info": (_cmd_info, "Summarise a face set.", _args_info),
    "train": (
        _cmd_train,
        "Train a face-swap model on two face sets (resumes MODEL_DIR).",
        _args_train,
    ),
    "convert": (_cmd_convert, "Swap faces in a photo, folder of photos or video.", _args_convert),
    "verify": (_cmd_verify, "Report whether files carry facetwin's synthetic label.", _args_verify),
    "eval": (
        _cmd_eval,
        "Measure a swap: identity, pose/expression kept, jitter, seams.",
        _args_eval,
    ),
    "demo": (_cmd_demo, "Run the whole pipeline on the bundled clips.", _args_demo),
}


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is one; options before it take no
    value), or None."""
    return next((a for a in argv if not a.startswith("-") and a in COMMANDS), None)


class _Parser(argparse.ArgumentParser):
    """argparse keeping facetwin's promise for usage errors too: one line and exit 2, with a
    pointer to ``--help`` instead of the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"facetwin: error: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``facetwin`` parser. With ``argv``, only the command named there gets its arguments:
    building them imports that stage's plugins (their names are the choices), and ``facetwin
    verify`` should not wait for torch. Without, every command gets them (docs/cli.md)."""
    p = _Parser(
        prog="facetwin",
        description="Face swap: extract -> train -> convert -> eval. " + CONSENT,
    )
    p.add_argument("--version", action="version", version=f"facetwin {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = None if argv is None else _command_in(argv)
    for name, (fn, help_, add_args) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_ + " " + CONSENT)
        sp.set_defaults(func=fn)
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        if argv is None or name == wanted:
            add_args(sp)
    return p


def _one_line(message: object) -> str:
    """``message`` on one line: newlines and other control characters (from a crafted file name
    or a library's message) become spaces, so the promise of one line holds."""
    text = "".join(c if c.isprintable() else " " for c in str(message))
    return " ".join(text.split())


def _quiet_native_logs(verbose: bool) -> None:
    """Keep OpenCV's own "[ WARN:0@...]" / "[ERROR:0@...]" lines off stderr: facetwin says what
    went wrong in its one line. Set before cv2 is imported (it reads OPENCV_LOG_LEVEL then), and
    on cv2 itself when something imported it already. ``-v`` leaves them on. FFmpeg's log (PyAV)
    is off unless a program turns it on (``av.logging``), and libpng's messages are silenced
    around each decode (media/image.py)."""
    if verbose:
        return
    import os

    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and os.environ["OPENCV_LOG_LEVEL"].upper() in ("OFF", "SILENT"):
        with contextlib.suppress(Exception):
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def main(argv: Sequence[str] | None = None) -> int:
    from facetwin.registry import load_external_plugins

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        load_external_plugins()  # before the parser: their names become choices
    except FacetwinError as e:
        print(f"facetwin: error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (already printed, one line)
        return e.code if isinstance(e.code, int) else 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="facetwin: %(levelname)s: %(message)s",
    )
    _quiet_native_logs(args.verbose)
    try:
        return int(args.func(args))
    except FacetwinError as e:
        print(f"facetwin: error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(
            "facetwin: interrupted - finished work is saved; run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            print(
                _one_line(
                    f"facetwin: error: disk full ({e.filename or ''}); finished work is saved"
                ),
                file=sys.stderr,
            )
            return EXIT_DISK_FULL
        raise
    except Exception as e:
        # SQLite's "database or disk is full" where no facetwin code wrapped it: still exit 5
        import sqlite3

        if isinstance(e, sqlite3.OperationalError) and "full" in str(e):
            print(
                f"facetwin: error: disk full ({_one_line(e)}); finished work is saved",
                file=sys.stderr,
            )
            return EXIT_DISK_FULL
        raise


if __name__ == "__main__":
    sys.exit(main())
