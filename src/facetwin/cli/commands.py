"""What each ``facetwin`` command runs: its parsed arguments turned into the stage's config and
one call of the Python API (each stage imported when its command runs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facetwin.cli.options import photo_detector


def cmd_extract(a: argparse.Namespace) -> int:
    from facetwin.extract.pipeline import ExtractConfig, extract

    cfg = ExtractConfig(
        detector=a.detector,
        landmarker=a.landmarker,
        hands_every=a.hands_every,
        photo_detector=photo_detector(a),
        size=a.size,
        coverage=a.coverage,
        every=a.every,
        refs=a.ref or [],
        threshold=a.threshold,
        device=a.device,
        embed_every=a.embed_every,
        embedder=a.embedder,
        progress=not a.quiet,
        plugin_settings=a.plugin_settings or {},
    )
    if a.ray:
        from facetwin.cluster import RayConfig
        from facetwin.extract.on_ray import extract_on_ray

        s = extract_on_ray(a.inputs, a.output, cfg, RayConfig(a.ray, a.ray_workers))
    else:
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


def cmd_info(a: argparse.Namespace) -> int:
    from facetwin.extract.info import format_info, read_info

    info = read_info(a.faceset)
    print(json.dumps(info.as_dict(), indent=2) if a.json else format_info(info))
    return 0


def cmd_train(a: argparse.Namespace) -> int:
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
            "warp_off": a.warp_off,
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


def cmd_convert(a: argparse.Namespace) -> int:
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
        photo_detector=photo_detector(a),
        sharpen=a.sharpen,
        erode=a.erode,
        feather=a.feather,
        threshold=a.threshold,
        occlusion=not a.no_occlusion,
        hands=not a.no_hands,
        progress=not a.quiet,
        segment_frames=a.segment_frames,
        threads=a.threads,
        ray=a.ray,
        ray_workers=a.ray_workers,
        plugin_settings=a.plugin_settings or {},
    )
    print(convert(a.input, a.model, a.output, cfg))
    return 0


def cmd_verify(a: argparse.Namespace) -> int:
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


def cmd_eval(a: argparse.Namespace) -> int:
    from facetwin.eval import EvalConfig, evaluate

    m = evaluate(
        a.original,
        a.swapped,
        model_dir=a.model,
        faceset_a=a.faceset_a,
        faceset_b=a.faceset_b,
        output_dir=a.output,
        cfg=EvalConfig(
            progress=not a.quiet,
            start_frame=a.start_frame,
            direction=a.direction,
            metrics=a.metrics,
            pose=a.pose,
        ),
    )
    print(json.dumps(headline(m), indent=2, default=str))
    return 0


def headline(metrics: dict) -> dict:
    """The parts of an eval result a person reads first: the frame counts and every measured
    section, a plugin's too (per-frame curves are in the report)."""
    from facetwin.eval.measures import sections

    keys = ("frames", *sections())
    return {k: metrics[k] for k in keys if metrics.get(k) is not None}


def cmd_demo(a: argparse.Namespace) -> int:
    from facetwin.demo import run_demo

    run_demo(a.output, iterations=a.iterations, device=a.device, minutes=a.minutes)
    return 0
