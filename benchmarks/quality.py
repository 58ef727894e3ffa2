"""Swap quality on held-out frames, both directions, per training recipe (issue 11).

The bundled pair is extracted whole once; every recipe trains with ``holdout`` (the last part of
each clip's face frames never reaches training), converts both clips whole with the face sets'
smoothed landmarks, and ``facetwin eval`` measures only the held-out frames - exactly what
``make demo`` does. One row per recipe: iterations, minutes, samples/s and every eval figure for
woman -> man and man -> woman.

    python benchmarks/quality.py [--recipes demo,seed] [--iterations N] [--minutes M]

Rows are saved per recipe (bench_out/quality/ROW.json) and reused by a rerun with the same
settings, so an interrupted table resumes. The table and all rows go to
bench_out/quality/quality.json (+ .md); copy them to benchmarks/results/ to publish a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Recipes: TrainConfig overrides on top of the arch's demo settings. "demo" is what
#: ``facetwin demo`` trains on a CPU; "seed" is the original recipe (Adam 5e-5 constant, L1).
RECIPES: dict[str, dict[str, Any]] = {
    "seed": {"arch": "lite", "lr": 5e-5, "schedule": {"kind": "constant"}, "loss": "l1"},
}


def recipe_config(name: str) -> dict[str, Any]:
    from facetwin.demo import CPU_RECIPE

    if name == "demo":
        return dict(CPU_RECIPE)
    if name in RECIPES:
        return dict(RECIPES[name])
    # ad hoc: "demo:lr=1e-3,loss=l1+ssim" - the demo recipe with some fields changed
    base, _, changes = name.partition(":")
    cfg = recipe_config(base)
    for item in filter(None, changes.split(";")):
        key, _, value = item.partition("=")
        cfg[key] = json.loads(value) if value[:1] in "[{0123456789.-tf" else value
    return cfg


def slugify(name: str) -> str:
    return re.sub(r"[^\w.=-]+", "_", name)


def row_name(name: str, iterations: int | None, minutes: float | None) -> str:
    """File-safe name of one recipe at one budget (its row file and model folder)."""
    budget = f"it{iterations}" if iterations else f"min{minutes:g}"
    return f"{slugify(name)}@{budget}"


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "commit": commit + ("+uncommitted changes" if dirty else ""),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),
        "torch_threads": torch_threads(),
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
    }


def measure(name: str, out: Path, iterations: int | None, minutes: float | None) -> dict:
    from facetwin.demo import HOLDOUT, convert_pair, evaluate_pair, extract_pair
    from facetwin.train.trainer import TrainConfig, train

    fs = extract_pair(out, progress=False)
    # one folder per budget: the trainer resumes a model folder, and a cosine laid over another
    # total would not be the recipe measured
    slug = row_name(name, iterations, minutes)
    model = out / f"model_{slug}"
    cfg = recipe_config(name)
    t0 = time.time()
    r = train(
        TrainConfig(
            faceset_a=str(fs["a"]), faceset_b=str(fs["b"]), model_dir=str(model),
            iterations=iterations, minutes=minutes, device="cpu", preview_every=250,
            holdout=HOLDOUT, **cfg,
        ),
        progress=False,
    )  # fmt: skip
    t_train = time.time() - t0
    videos = convert_pair(out / f"swaps_{slug}", model, fs, progress=False)
    metrics = evaluate_pair(out / f"swaps_{slug}", model, videos, fs, progress=False)
    row: dict[str, Any] = {
        "recipe": name,
        "config": cfg,
        "iterations": r.iterations,
        "train_minutes": round(t_train / 60, 2),
        "samples_per_s": r.samples_per_s,
        **{f"{k}.{m}": v for k, ms in metrics.items() for m, v in ms.items()},
        "wall_s": round(time.time() - t0, 1),
        **machine(),
    }
    return row


COLUMNS = [
    ("recipe", "recipe", "{}"),
    ("iterations", "it", "{}"),
    ("train_minutes", "min", "{:.1f}"),
]
FIGURES = [
    ("id_retrieval", "ID", "{:.0%}"),
    ("nearer_target_by", "nearer by", "{:+.2f}"),
    ("sharpness_ratio", "sharp", "{:.2f}"),
    ("pose_error_mean", "pose°", "{:.1f}"),
    ("pose_error_centred_mean", "pose° c", "{:.1f}"),
    ("expression_error_mean", "expr", "{:.3f}"),
    ("landmark_jitter_ratio", "jitter", "{:.2f}"),
    ("flicker_ratio", "flicker", "{:.2f}"),
]


def table(rows: list[dict]) -> str:
    from facetwin.demo import DIRECTIONS

    cols = list(COLUMNS)
    for d in DIRECTIONS:
        short = "w>m" if d == "woman_as_man" else "m>w"
        cols += [(f"{d}.{k}", f"{t} {short}", f) for k, t, f in FIGURES]
    return markdown_table(rows, cols)


def markdown_table(rows: list[dict], cols: list[tuple[str, str, str]]) -> str:
    """Rows as a Markdown table: (key, title, format) per column, "n/a" for a missing value."""
    lines = ["| " + " | ".join(t for _, t, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = ["n/a" if r.get(k) is None else fmt.format(r[k]) for k, _, fmt in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(quick: bool = False) -> list[dict]:
    """``make bench``: the demo recipe at its iteration count (quick: 200 iterations)."""
    from facetwin.demo import CPU_ITERATIONS

    out = ROOT / "bench_out" / "quality"
    out.mkdir(parents=True, exist_ok=True)
    row = measure("demo", out, 200 if quick else CPU_ITERATIONS, None)
    print(table([row]))
    return [row]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="demo,seed")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--out", default=str(ROOT / "bench_out" / "quality"))
    a = ap.parse_args()
    if a.iterations is None and a.minutes is None:
        from facetwin.demo import CPU_ITERATIONS

        a.iterations = CPU_ITERATIONS
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in a.recipes.split(","):
        saved = out / f"{row_name(name, a.iterations, a.minutes)}.json"
        if saved.is_file():
            rows.append(json.loads(saved.read_text()))
        else:
            rows.append(measure(name, out, a.iterations, a.minutes))
            saved.write_text(json.dumps(rows[-1], indent=1))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    everything = [json.loads(f.read_text()) for f in sorted(out.glob("*@*.json"))]
    (out / "quality.json").write_text(json.dumps(everything, indent=1))
    (out / "quality.md").write_text(table(everything) + "\n")


if __name__ == "__main__":
    main()
