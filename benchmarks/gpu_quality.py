"""Issue 11's GPU run: ``original`` (the seed's 50k iterations) and ``gan`` trained on one GPU
at the same time, then both bundled clips converted with each - the swaps that
``benchmarks/quality.py`` and ``make demo`` measure on the CPU, from the seed's own model.

It needs only what a lent GPU machine has plus PyAV (convert reads and writes video): the face
sets are extracted beforehand on a CPU (``make demo`` or ``benchmarks/quality.py``), convert
reuses their smoothed landmarks, and ``facetwin eval`` runs afterwards where dlib's model files
are (the swapped videos and the models' metadata come back; the 330 MB weights do not need to).

    python benchmarks/gpu_quality.py run --facesets DIR --out DIR [--minutes M] [--dry-run]
    python benchmarks/gpu_quality.py eval --out DIR        # afterwards, on the CPU machine

``DIR`` holds ``faceset_woman`` and ``faceset_man``. Each training stops at its iteration target
or after ``--minutes`` (whichever comes first; the JSON says which), so the run fits a lease.
The GAN trains without the identity term: that term is the dlib ResNet that ``eval`` judges with.
``--dry-run`` runs the whole script on the CPU at toy sizes, to check it before a lease.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: name -> (TrainConfig overrides, iteration target). ``original``: the demo's GPU recipe (the
#: seed's length, a warm-up and cosine decay to 2x the seed's peak rate). ``gan``: the seed's
#: 20k claim, same schedule; adversarial weight ramps in over 2k iterations; no identity term.
RUNS: dict[str, dict[str, Any]] = {
    "original": {"arch": "original", "iterations": 50_000, "workers": 8},
    "gan": {
        "arch": "gan",
        "iterations": 20_000,
        "workers": 5,
        "gan": {"identity": 0.0, "adversarial_warmup": 2000},
    },
}


def train_one(name: str, sets: Path, out: Path, minutes: float, dry: bool) -> None:
    """One training run (a child process, so that the two share the GPU, not one interpreter)."""
    from facetwin.demo import GPU_RECIPE, HOLDOUT
    from facetwin.train import TrainConfig, train
    from facetwin.train.gan import GanLossConfig

    spec = dict(RUNS[name])
    gan = GanLossConfig(**spec.pop("gan", {}))
    target = spec.pop("iterations")
    iterations = 30 if dry else target
    recipe = {**GPU_RECIPE, **spec}
    if dry:
        recipe.update(workers=1, schedule={"kind": "cosine", "warmup": 5, "final": 0.05})
    cfg = TrainConfig(
        faceset_a=str(sets / "faceset_woman"),
        faceset_b=str(sets / "faceset_man"),
        model_dir=str(out / f"model_{name}"),
        batch=2 if dry else 16,
        iterations=iterations,
        minutes=minutes,
        device="cpu" if dry else "cuda",
        holdout=HOLDOUT,
        save_every=10**9,  # one snapshot at the end (original's is 1 GB with Adam's state)
        save_minutes=0,
        preview_every=10 if dry else 5000,
        log_every=50,
        keep=1,
        gan=gan,
        **recipe,
    )
    t = time.perf_counter()
    r = train(cfg, progress=False)
    doc = {
        "name": name,
        "arch": r.arch,
        "iterations": r.iterations,
        "target": iterations,
        "stopped": r.stopped,
        "seconds": round(time.perf_counter() - t, 1),
        "train_seconds": round(r.seconds, 1),
        "samples_per_s": round(r.samples_per_s, 1),
        "data_wait_share": round(r.data_wait_share, 3),
        "loss_a": r.loss_a,
        "loss_b": r.loss_b,
        "config": cfg.to_json(),
    }
    (out / f"train_{name}.json").write_text(json.dumps(doc, indent=1, default=str))


def convert_one(name: str, sets: Path, out: Path, dry: bool) -> None:
    """Both clips swapped whole with one model (as ``make demo`` does), timed."""
    from facetwin.demo import convert_pair

    t = time.perf_counter()
    sides = {"a": sets / "faceset_woman", "b": sets / "faceset_man"}
    device = "cpu" if dry else "cuda"
    videos = convert_pair(out / f"swaps_{name}", out / f"model_{name}", sides, device, False)
    doc = {"name": name, "seconds": round(time.perf_counter() - t, 1)}
    doc["videos"] = {k: str(v) for k, v in videos.items()}
    (out / f"convert_{name}.json").write_text(json.dumps(doc, indent=1))


def run(a: argparse.Namespace) -> None:
    """Both trainings at once, then both conversions at once; a summary JSON with the GPU."""
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--facesets", a.facesets, "--out", a.out] + (["--dry-run"] if a.dry_run else [])
    t0 = time.perf_counter()
    for stage, extra in (("train", ["--minutes", str(a.minutes)]), ("convert", [])):
        procs = {}
        for name in RUNS:
            log = open(out / f"{stage}_{name}.log", "w")  # noqa: SIM115 - closed below
            cmd = [*me, f"{stage}-one", name, *common, *extra]
            procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
        for name, (p, log) in procs.items():
            rc = p.wait()
            log.close()
            print(f"{stage} {name}: exit {rc} at {time.perf_counter() - t0:.0f} s", flush=True)
    summary: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 1)}
    try:
        import torch

        summary["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
        summary["torch"] = torch.__version__
    except Exception as e:  # noqa: BLE001 - a summary line, not a failure
        summary["device"] = repr(e)
    for name in RUNS:
        for stage in ("train", "convert"):
            path = out / f"{stage}_{name}.json"
            if path.is_file():
                summary[f"{stage}_{name}"] = json.loads(path.read_text())
    (out / "gpu_quality.json").write_text(json.dumps(summary, indent=1, default=str))
    brief = {k: {f: x for f, x in v.items() if f != "config"} if isinstance(v, dict) else v
             for k, v in summary.items()}  # fmt: skip
    print(json.dumps(brief, indent=1, default=str))


def evaluate(a: argparse.Namespace) -> None:
    """``facetwin eval`` of every returned swap on its held-out frames (needs dlib's models)."""
    from facetwin.demo import evaluate_pair

    out = Path(a.out)
    sets = {"a": Path(a.facesets) / "faceset_woman", "b": Path(a.facesets) / "faceset_man"}
    summary = json.loads((out / "gpu_quality.json").read_text())
    for name in RUNS:
        swaps = out / f"swaps_{name}"
        videos = {k: swaps / f"{k}.mp4" for k in ("woman_as_man", "man_as_woman")}
        if all(v.is_file() for v in videos.values()):
            figures = evaluate_pair(swaps, out / f"model_{name}", videos, sets, progress=False)
            summary[f"eval_{name}"] = figures
    (out / "gpu_quality.json").write_text(json.dumps(summary, indent=1, default=str))
    print(json.dumps({k: v for k, v in summary.items() if k.startswith("eval")}, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=["run", "eval", "train-one", "convert-one"])
    p.add_argument("name", nargs="?", choices=list(RUNS))
    p.add_argument("--facesets", default=str(ROOT / "bench_out" / "quality"))
    p.add_argument("--out", default=str(ROOT / "bench_out" / "gpu_quality"))
    p.add_argument("--minutes", type=float, default=7.0, help="cap of each training (wall time)")
    p.add_argument("--dry-run", action="store_true", help="the CPU at toy sizes")
    a = p.parse_args()
    if a.dry_run:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.stage.endswith("-one"):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if a.stage == "run":
        run(a)
    elif a.stage == "eval":
        evaluate(a)
    elif a.stage == "train-one":
        train_one(a.name, Path(a.facesets), Path(a.out), a.minutes, a.dry_run)
    else:
        convert_one(a.name, Path(a.facesets), Path(a.out), a.dry_run)


if __name__ == "__main__":
    main()
