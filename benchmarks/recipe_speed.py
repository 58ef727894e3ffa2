"""Training speed of the CPU recipe's pieces in the real ``train()`` loop, one machine, one run.

Rows: the demo recipe (``lite-hd``, batch 8, L1 + half-size SSIM), the same with plain L1, with
one loader worker instead of two, and ``lite`` at batch 16 with L1 (the architecture the slowest
machine's 71 samples/s was measured with) - so the demo's speed can be scaled to any machine
from its ``lite`` figure. 200 iterations each, quiet machine.

    python benchmarks/recipe_speed.py FACESET_A FACESET_B [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "demo recipe (lite-hd b8, l1+ssim_half)": {"loss": "l1+ssim_half"},
    "lite-hd b8, l1": {"loss": "l1"},
    "demo recipe, 1 loader worker": {"loss": "l1+ssim_half", "workers": 1},
    "lite b16, l1": {"arch": "lite", "batch": 16, "loss": "l1"},
    "demo recipe, channels_last": {"loss": "l1+ssim_half", "channels_last": True},
    "demo recipe, bf16 autocast": {"loss": "l1+ssim_half", "amp": "bf16"},
    "demo recipe, bf16 autocast, channels_last": {
        "loss": "l1+ssim_half",
        "amp": "bf16",
        "channels_last": True,
    },
}


def main() -> None:
    from facetwin.train.trainer import TrainConfig, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("faceset_a")
    ap.add_argument("faceset_b")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "bench_out" / "recipe-speed-cpu.json"))
    a = ap.parse_args()
    rows = []
    for name, kw in CASES.items():
        cfg = {
            "arch": "lite-hd", "batch": 8, "lr": 5e-4, "device": "cpu", "preview_every": 0,
            "schedule": {"kind": "cosine", "warmup": 100}, "holdout": 0.2, **kw,
        }  # fmt: skip
        work = tempfile.mkdtemp()
        try:
            r = train(
                TrainConfig(a.faceset_a, a.faceset_b, str(Path(work) / "m"),
                            iterations=a.iterations, **cfg),  # type: ignore[arg-type]
                progress=False,
            )  # fmt: skip
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rows.append(
            {"case": name, "samples_per_s": r.samples_per_s, "data_wait": r.data_wait_share}
        )
        print(f"{name:42s} {r.samples_per_s:7.1f} samples/s  data wait {r.data_wait_share:.1%}")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    doc = {
        "rows": rows,
        "commit": commit,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_1min_after": round(os.getloadavg()[0], 2),
        "iterations": a.iterations,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
