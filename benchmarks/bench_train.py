"""Training throughput: how close does a training step get to the machine's FLOP peak?

Measured in one run, on real faces from the bundled clips (extracted once into
bench_out/facesets):

* the fp32 matmul peak: ``torch.matmul`` of large square matrices (what the brief asks for);
  and, as a second yardstick, oneDNN's peak on a large 3x3 convolution, because on some CPUs
  (AMD with MKL) torch.matmul is far below what the convolution kernels reach;
* one training step (forward, backward, Adam) of ``original`` and ``lite`` at batch 16 + 16:
  samples/s, achieved FLOP/s (forward FLOPs counted per layer, x3 for forward + backward) and
  its share of both peaks, for NCHW and channels_last memory layouts, bf16 autocast as an
  extra (not the fp32 comparison), and torch.compile for ``lite`` (full run only);
* the real training loop (``facetwin.train.train``, two loader workers): samples/s and the
  share of time spent waiting for data;
* peak resident memory of each case (each runs in its own process, so maxrss is its own).

``run(quick=True)`` does fewer iterations and smaller matrices (for CI); ``python
benchmarks/bench_train.py [--quick]`` prints a table and writes bench_out/train.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from publish import PUBLISH_HELP, write_result

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench_out"
CLIPS = {
    "woman": [ROOT / "data" / "video" / "WolfgangLanger_Pexels.mp4"],
    "man": [ROOT / "data" / "video" / "single_face.mp4"],
}
BATCH = 16


def maxrss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def best_rate(fn: Any, flops: float, reps: int) -> float:
    """Best GFLOP/s of ``fn`` over ``reps`` timed calls after two warm-up calls."""
    fn()
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return flops / best / 1e9


def matmul_peak(n: int, reps: int) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    return best_rate(lambda: a @ b, 2 * n**3, reps)


def conv_peak(reps: int) -> float:
    """oneDNN's fp32 rate on a big, well-shaped 3x3 convolution (channels_last)."""
    import torch
    import torch.nn.functional as F

    cl = torch.channels_last
    x = torch.randn(32, 512, 16, 16).contiguous(memory_format=cl)
    w = torch.randn(512, 512, 3, 3).contiguous(memory_format=cl)
    return best_rate(lambda: F.conv2d(x, w, padding=1), 2 * 32 * 256 * 512 * 512 * 9, reps)


def facesets() -> dict[str, Path]:
    """Face sets of the bundled clips, extracted once and reused."""
    from facetwin.extract.pipeline import ExtractConfig, extract

    out = {}
    for name, clips in CLIPS.items():
        path = OUT / "facesets" / name
        if not (path / "faceset.db").is_file():
            extract(clips, path, ExtractConfig(progress=False))
        out[name] = path
    return out


# -- measurements, each run in a child process ---------------------------------------------------
def child_step(spec: dict[str, Any]) -> dict[str, Any]:
    """Time training steps on real augmented batches (prepared up front: compute only)."""
    import torch

    from facetwin.faceset import FaceSet
    from facetwin.train.augment import AugmentConfig
    from facetwin.train.data import PairDataset, load_bank
    from facetwin.train.losses import parse_loss
    from facetwin.train.models import build_model, forward_flops
    from facetwin.train.step import Precision, TrainStep

    banks = {}
    for side, path in (("a", spec["faceset_a"]), ("b", spec["faceset_b"])):
        with FaceSet.open(path) as fs:
            banks[side] = load_bank(fs, 64, 1.0)
    ds = PairDataset(banks, BATCH, seed=0, augment_cfg=AugmentConfig())
    batches = [ds[i] for i in range(4)]
    torch.manual_seed(0)
    model = build_model(spec["arch"])
    cl = spec["layout"] == "channels_last"
    if cl:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=5e-5, betas=(0.5, 0.999), fused=True)
    precision = Precision(torch.bfloat16) if spec["amp"] == "bf16" else Precision()
    step = TrainStep(model, opt, parse_loss("l1"), torch.device("cpu"), precision, cl)
    if spec.get("compile"):
        step.pair = torch.compile(step.pair)
    t0 = time.perf_counter()
    for i in range(spec["warmup"]):
        step(batches[i % 4])
    first = time.perf_counter() - t0
    times = []
    for i in range(spec["iters"]):
        t = time.perf_counter()
        step(batches[i % 4])
        times.append(time.perf_counter() - t)
    flops = 3 * sum(forward_flops(model.spec).values()) * 2 * BATCH
    med = statistics.median(times)
    return {
        "step_s": med,
        "best_step_s": min(times),
        "warmup_s": first,
        "samples_per_s": 2 * BATCH / med,
        "gflops": flops / med / 1e9,
        "step_gflop": flops / 1e9,
        "peak_rss_mb": maxrss_mb(),
        "threads": torch.get_num_threads(),
    }


def child_loop(spec: dict[str, Any]) -> dict[str, Any]:
    """The real loop: train() with loader workers, fresh model dir; report its own timing."""
    from facetwin.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            faceset_a=spec["faceset_a"],
            faceset_b=spec["faceset_b"],
            model_dir=str(Path(tmp) / "model"),
            arch=spec["arch"],
            batch=BATCH,
            iterations=spec["iters"],
            workers=spec["workers"],
            save_every=10**9,
            preview_every=0,
            device="cpu",
        )
        r = train(cfg, progress=False)
    return {
        "samples_per_s": r.samples_per_s,
        "step_s": r.seconds / max(r.iterations - r.start_iteration, 1),
        "data_wait_share": r.data_wait_share,
        "peak_rss_mb": maxrss_mb(),
    }


def in_child(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter so its peak memory is its own."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {kind} {spec} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the table ----------------------------------------------------------------------------------
def run(quick: bool = False) -> list[dict[str, Any]]:
    """All measurements as table rows (see the module docstring)."""
    import torch

    sets = facesets()
    fs = {"faceset_a": str(sets["woman"]), "faceset_b": str(sets["man"])}
    reps = 3 if quick else 6
    mm = matmul_peak(2048 if quick else 4096, reps)
    conv = conv_peak(reps)
    rows: list[dict[str, Any]] = [
        {"case": f"fp32 matmul peak (torch.matmul {2048 if quick else 4096}^2)", "gflops": mm},
        {"case": "fp32 conv peak (oneDNN 3x3, 512 ch, channels_last)", "gflops": conv},
    ]
    cases = [
        ("original", "nchw", "off", False),
        ("original", "channels_last", "off", False),
        ("lite", "nchw", "off", False),
        ("lite", "channels_last", "off", False),
        ("original", "channels_last", "bf16", False),
        ("lite", "channels_last", "bf16", False),
    ]
    if not quick:
        cases.append(("lite", "nchw", "off", True))
    for arch, layout, amp, comp in cases:
        big = arch == "original"
        spec = {
            **fs, "arch": arch, "layout": layout, "amp": amp, "compile": comp,
            "warmup": 2 if big else 4, "iters": (3 if big else 8) if quick else (6 if big else 20),
        }  # fmt: skip
        r = in_child("step", spec)
        dtype = "bf16 autocast" if amp == "bf16" else "fp32"
        label = f"{arch} step, batch {BATCH}+{BATCH}, {layout}, {dtype}"
        rows.append(
            {
                "case": label + (", torch.compile" if comp else ""),
                "arch": arch,
                "samples_per_s": r["samples_per_s"],
                "step_s": r["step_s"],
                "gflops": r["gflops"],
                # share of the machine's fp32 peak: the higher of the two measured (on this
                # CPU oneDNN's convolutions beat torch.matmul, so the matmul figure is no peak;
                # the FLOP count is torch's own, tests/test_train_models.py checks it)
                "pct_peak": 100 * r["gflops"] / max(mm, conv) if amp == "off" else None,
                "peak_rss_mb": r["peak_rss_mb"],
                "detail": r,
            }
        )
    for arch in ("original", "lite"):
        iters = (4 if arch == "original" else 20) if quick else (12 if arch == "original" else 80)
        r = in_child("loop", {**fs, "arch": arch, "iters": iters, "workers": 2})
        rows.append(
            {
                "case": f"{arch} train() loop, 2 loader workers, fp32 nchw, {iters} it",
                "arch": arch,
                "samples_per_s": r["samples_per_s"],
                "step_s": r["step_s"],
                "data_wait_pct": 100 * r["data_wait_share"],
                "peak_rss_mb": r["peak_rss_mb"],
            }
        )
    for row in rows:
        row.setdefault("threads", torch.get_num_threads())
        row.setdefault("cpus", os.cpu_count())
    return rows


COLUMNS = [
    ("case", "case", "{}"),
    ("samples_per_s", "samples/s", "{:.1f}"),
    ("step_s", "step s", "{:.3f}"),
    ("gflops", "GFLOP/s", "{:.1f}"),
    ("pct_peak", "% fp32 peak", "{:.0f}"),
    ("data_wait_pct", "data wait %", "{:.1f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
]


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[title for _, title, _ in COLUMNS]]
    for row in rows:
        cells.append(["" if row.get(k) is None else fmt.format(row[k]) for k, _, fmt in COLUMNS])
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = [" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                        enumerate(zip(r, widths))) for r in cells]  # fmt: skip
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--publish", action="store_true", help=PUBLISH_HELP)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, spec = args.child
        fn = child_step if kind == "step" else child_loop
        print(json.dumps(fn(json.loads(spec))))
        return
    rows = run(quick=args.quick)
    print(table(rows))
    write_result("train", rows, args.publish)


if __name__ == "__main__":
    main()
