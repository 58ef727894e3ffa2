"""Architectures side by side at equal wall-clock training time on this machine (issue 7).

Same data as ``heldout_swap.py``: frames 0-399 of the woman's clip and the man's two clips train
each model for ``--minutes`` from scratch; the 72 held-out frames (400-471) are converted to the
man and ``facetwin eval`` measures them. Per architecture: iterations and samples/s reached, ID
retrieval (share of swapped faces nearer the man than the woman), pose and expression error,
landmark jitter ratio (swap / original), sharpness ratio (variance of the Laplacian in the face,
swap / original), seam (border colour step in excess of the original's, delta E).

    python benchmarks/arch_compare.py [--minutes 8] [--archs original,lite,gan,original128]

Each finished architecture is saved (bench_out/arch_compare/ARCH.json) with the commit, the
settings and the machine's load before and after it, and reused only by a run of the same commit
and settings, so an interrupted comparison resumes but rows of other code are never mixed in.
Rows are comparable only when each ran alone: the loads say whether it did.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from heldout_swap import ROOT, prepare  # noqa: E402

COLUMNS = [
    ("arch", "arch", "{}"),
    ("iterations", "iterations", "{}"),
    ("samples_per_s", "samples/s", "{:.1f}"),
    ("id_retrieval", "ID retrieval", "{:.1%}"),
    ("swap_to_b_mean", "dist to B", "{:.3f}"),
    ("pose_error_mean", "pose err deg", "{:.1f}"),
    ("expression_error_mean", "expr err", "{:.3f}"),
    ("landmark_jitter_ratio", "jitter ratio", "{:.2f}"),
    ("sharpness_ratio", "sharpness ratio", "{:.2f}"),
    ("border_step_excess", "seam dE", "{:.2f}"),
]


def measure(
    arch: str, minutes: float, out: Path, fs_a: Path, fs_b: Path, clip: Path, gan: str = ""
) -> dict:
    from facetwin.convert.pipeline import ConvertConfig, convert
    from facetwin.eval import EvalConfig, evaluate
    from facetwin.train.gan import GanLossConfig
    from facetwin.train.trainer import TrainConfig, train

    name = label(arch, gan)
    slug = slugify(name)
    model = out / f"model_{slug}"
    t0 = time.time()
    r = train(
        TrainConfig(
            faceset_a=str(fs_a), faceset_b=str(fs_b), model_dir=str(model), arch=arch,
            minutes=minutes, device="cpu", preview_every=500, gan=GanLossConfig.parse(gan),
        ),
        progress=False,
    )  # fmt: skip
    swapped = out / f"heldout_{slug}.mp4"
    convert(clip, model, swapped, ConvertConfig(direction="a2b", progress=False, device="cpu"))
    m: dict[str, Any] = evaluate(
        clip, swapped, model_dir=model, faceset_a=fs_a, faceset_b=fs_b,
        output_dir=out / f"report_{slug}", cfg=EvalConfig(progress=False),
    )  # fmt: skip
    ident, att, tmp, bl = m["identity"], m["attributes"], m["temporal"], m["blending"]
    return {
        "arch": name,
        "minutes": minutes,
        "iterations": r.iterations,
        "samples_per_s": r.samples_per_s,
        "swap_found_rate": m["frames"]["swap_found_rate"],
        "id_retrieval": ident["id_retrieval"],
        "swap_to_b_mean": ident["swap_to_b_mean"],
        "swap_to_a_mean": ident["swap_to_a_mean"],
        "pose_error_mean": att["pose_error_mean"],
        "expression_error_mean": att["expression_error_mean"],
        "landmark_jitter_ratio": tmp.get("landmark_jitter_ratio"),
        "sharpness_ratio": bl.get("sharpness_ratio"),
        "border_step_excess": bl.get("border_step_excess"),
        "wall_s": round(time.time() - t0, 1),
    }


def label(arch: str, gan: str) -> str:
    """Row name: the arch, plus the GAN settings when they differ from the defaults."""
    return f"{arch} ({gan})" if gan and "gan" in arch else arch


def slugify(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)


def table(rows: list[dict]) -> str:
    from quality import markdown_table  # benchmarks/ is on sys.path when these run

    return markdown_table(rows, COLUMNS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--archs", default="original,lite,gan,gan-lite,original128")
    ap.add_argument("--out", default=str(ROOT / "bench_out" / "arch_compare"))
    ap.add_argument("--gan", default="", help="GAN settings for the gan archs (as train --gan)")
    a = ap.parse_args()
    out = Path(a.out)
    fs_a, fs_b, test_clip = prepare(out)
    rows = []
    from quality import machine

    for arch in a.archs.split(","):
        saved = out / f"{slugify(label(arch, a.gan))}.json"
        key = {"commit": machine()["commit"], "minutes": a.minutes, "gan": a.gan}
        old = json.loads(saved.read_text()) if saved.is_file() else {}
        if old.get("key") == key:
            rows.append(old)
        else:
            load_before = os.getloadavg()[0]
            row = measure(arch, a.minutes, out, fs_a, fs_b, test_clip, a.gan)
            row.update(key=key, load_1min_before=round(load_before, 2), **machine())
            row["load_1min_after"] = row.pop("load_1min")
            rows.append(row)
            saved.write_text(json.dumps(row, indent=1))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    everything = [json.loads(f.read_text()) for f in sorted(out.glob("*.json"))
                  if f.name != "arch_compare.json"]  # fmt: skip
    (out / "arch_compare.json").write_text(json.dumps(everything, indent=1))
    (out / "arch_compare.md").write_text(table(everything) + "\n")


if __name__ == "__main__":
    main()
