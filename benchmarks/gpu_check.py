"""The CUDA path, checked and timed on a GPU (CI has none; run it where one is lent).

1. Numerics: ``original``'s forward on the GPU (fp32 with TF32 off, and bf16 autocast) against
   the CPU in fp32, relative L2 error on real faces.
2. One training step (plain :class:`TrainStep` or :class:`GanStep`, bf16 autocast,
   channels_last, what ``--device auto --amp auto`` picks on CUDA) for every architecture at
   two batch sizes: samples/s, and for the plain models achieved TFLOP/s and their share of the
   bf16 matmul peak measured in the same run.
3. The real loop, ``train()`` on the GPU with loader workers: ``original`` for a few hundred
   iterations then resumed, and ``gan`` with every term (identity included): the loss falls, no
   step is skipped, and how much of the loop waits for the CPU's augmentation.
4. Convert's model throughput: ``draw`` on batches of crops (faces/s).

    python benchmarks/gpu_check.py --facesets DIR [--quick]

``DIR`` holds face sets ``woman`` and ``man`` (``bench_out/facesets`` after ``make bench``).
Prints a table and writes ``bench_out/gpu.json`` (or ``$OUT/gpu.json`` when OUT is set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facetwin.faceset import FaceSet  # noqa: E402
from facetwin.train import TrainConfig, read_loss_log, train  # noqa: E402
from facetwin.train.augment import AugmentConfig  # noqa: E402
from facetwin.train.data import PairDataset, load_bank  # noqa: E402
from facetwin.train.gan import GanLossConfig, GanStep  # noqa: E402
from facetwin.train.losses import parse_loss  # noqa: E402
from facetwin.train.models import arch_info, build_model, forward_flops  # noqa: E402
from facetwin.train.models.gan import GanSwap  # noqa: E402
from facetwin.train.step import TrainStep, choose_precision  # noqa: E402

ARCHS = ("original", "lite", "original128", "gan", "gan-lite")
#: "cuda"; ``--dry-run`` sets "cpu" to check the script itself at tiny sizes before a lease.
DEV = {"name": "cuda"}


def sync() -> None:
    if DEV["name"] == "cuda":
        torch.cuda.synchronize()


def bf16_peak(n: int = 8192) -> float:
    """TFLOP/s of an n^3 bf16 matmul on random data (median of 10 after warm-up)."""
    a = torch.randn(n, n, device=DEV["name"], dtype=torch.bfloat16)
    b = torch.randn(n, n, device=DEV["name"], dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        sync()
        t = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e12


def faces(path: Path, n: int, size: int, coverage: float) -> torch.Tensor:
    from facetwin.face.align import recrop

    with FaceSet.open(path) as fs:
        recs = fs.faces()
        picks = [recs[i] for i in np.linspace(0, len(recs) - 1, n).astype(int)]
        crops = [recrop(fs.load_aligned(r), fs.coverage, coverage, size) for r in picks]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255


def numerics(sets: dict[str, Path]) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    model = build_model("original").eval()
    x = faces(sets["woman"], 16, 64, 1.0)
    with torch.no_grad():
        ref = model(x, "b").double()
        gpu = model.to(DEV["name"])
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        fp32 = gpu(x.to(DEV["name"]), "b").double().cpu()
        with torch.autocast(DEV["name"], dtype=torch.bfloat16):
            bf16 = gpu(x.to(DEV["name"]), "b").double().cpu()
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    rel = lambda y: float((y - ref).norm() / ref.norm())  # noqa: E731
    return [
        {"case": "original forward, CUDA fp32 vs CPU fp32", "rel_err": rel(fp32)},
        {"case": "original forward, CUDA bf16 autocast vs CPU fp32", "rel_err": rel(bf16)},
    ]


def step_speed(
    sets: dict[str, Path], arch: str, batch: int, iters: int, peak: float, face_net: Any
) -> dict[str, Any]:
    device = torch.device(DEV["name"])
    size = arch_info(arch).input_size
    banks = {}
    for side, name in (("a", "woman"), ("b", "man")):
        with FaceSet.open(sets[name]) as fs:
            banks[side] = load_bank(fs, size, arch_info(arch).default_coverage)
    ds = PairDataset(banks, batch, seed=0, augment_cfg=AugmentConfig())
    batches = [ds[i] for i in range(3)]
    torch.manual_seed(0)
    model = build_model(arch).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=5e-5, betas=(0.5, 0.999), fused=True)
    precision = choose_precision("auto" if device.type == "cuda" else "bf16", device)
    step: Any
    if isinstance(model, GanSwap):
        step = GanStep(model, GanLossConfig(adversarial_warmup=0, identity_warmup=0), face_net,
                       device, optimizer=opt, precision=precision, channels_last=True,
                       loss=parse_loss("l1", 2.0))  # fmt: skip
    else:
        step = TrainStep(model, opt, parse_loss("l1"), device, precision, True)
    for i in range(5):
        step(batches[i % 3])
    sync()
    times = []
    for i in range(iters):
        t = time.perf_counter()
        step(batches[i % 3])  # returns floats: a host sync per step, as in training
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    row: dict[str, Any] = {
        "case": f"{arch} step, batch {batch}+{batch}, bf16, channels_last"
        + (", every GAN term" if isinstance(model, GanSwap) else ""),
        "samples_per_s": 2 * batch / med,
        "step_ms": 1e3 * med,
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if DEV["name"] == "cuda" else 0,
    }
    if not isinstance(model, GanSwap):
        tflops = 3 * sum(forward_flops(model.spec).values()) * 2 * batch / med / 1e12
        row.update(tflops=tflops, pct_bf16_peak=100 * tflops / peak)
    del step, model, opt
    if DEV["name"] == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return row


def loop(sets: dict[str, Path], arch: str, iters: int, resume: int, **kw: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            faceset_a=str(sets["woman"]), faceset_b=str(sets["man"]),
            model_dir=str(Path(tmp) / "m"), arch=arch, iterations=iters, device=DEV["name"],
            workers=min(8, (os.cpu_count() or 2) - 2), save_every=10**9, preview_every=0,
            log_every=10, **kw,
        )  # fmt: skip
        t0 = time.perf_counter()
        r = train(cfg, progress=False)
        wall = time.perf_counter() - t0
        log = read_loss_log(cfg.model_dir)
        # the GAN's composite loss first rises while the mask prior opens alpha (the input no
        # longer shows through), so follow its raw-RGB reconstruction instead
        key = "self_recon_{}" if "self_recon_a" in log[0] else "loss_{}"
        first = statistics.mean(x[key.format("a")] + x[key.format("b")] for x in log[:3])
        last = statistics.mean(x[key.format("a")] + x[key.format("b")] for x in log[-3:])
        r2 = train(TrainConfig(model_dir=cfg.model_dir, iterations=iters + resume), False)
    return {
        "case": f"{arch} train(), {iters} it + resume {resume}, "
        f"{cfg.workers} loader workers, {DEV['name']}",
        "samples_per_s": r.samples_per_s,
        "data_wait_pct": 100 * r.data_wait_share,
        "loss_first_last": f"{first:.3f} -> {last:.3f}",
        "ok": r.skipped_steps == 0
        and last < first
        and r2.start_iteration == iters
        and r2.iterations == iters + resume,
        "wall_s": wall,
    }


def draw_speed(arch: str, batch: int) -> dict[str, Any]:
    model = build_model(arch).to(DEV["name"]).eval()
    size = arch_info(arch).input_size
    x = torch.rand(batch, 3, size, size, device=DEV["name"])
    with torch.inference_mode():
        for _ in range(3):
            model.draw(x, "b")
        sync()
        t = time.perf_counter()
        for _ in range(20):
            model.draw(x, "b")
        sync()
    dt = (time.perf_counter() - t) / 20
    return {"case": f"{arch} convert draw(), batch {batch}, fp32", "faces_per_s": batch / dt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facesets", type=Path, default=ROOT / "bench_out" / "facesets")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: test the script")
    args = parser.parse_args()
    dry = args.dry_run
    if dry:
        DEV["name"] = "cpu"
    elif not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here")
    name = torch.cuda.get_device_name() if not dry else "cpu (dry run)"
    sets = {n: args.facesets / n for n in ("woman", "man")}
    rows: list[dict[str, Any]] = [{"case": f"device {name}, torch {torch.__version__}"}]
    peak = bf16_peak(512 if dry else 8192)
    rows.append({"case": "bf16 matmul peak (8192^3)", "tflops": peak})
    rows += numerics(sets)
    from facetwin.extract.face_resnet import FaceResNet

    face_net = FaceResNet.from_dlib().to(DEV["name"])
    iters = 2 if dry else 10 if args.quick else 30
    for arch in ARCHS if not dry else ("lite", "gan-lite"):
        for batch in (16, 64) if not dry else (2,):
            rows.append(step_speed(sets, arch, batch, iters, peak, face_net))
            print(json.dumps(rows[-1]), flush=True)
    # what the identity network costs the GAN step
    rows.append(step_speed(sets, "gan" if not dry else "gan-lite", 64 if not dry else 2, iters,
                           peak, None))  # fmt: skip
    rows[-1]["case"] = rows[-1]["case"].replace("every GAN term", "no identity term")
    big, gan = ("original", "gan") if not dry else ("lite", "gan-lite")
    rows.append(loop(sets, big, 6 if dry else 100 if args.quick else 400, 2 if dry else 20))
    print(json.dumps(rows[-1]), flush=True)
    n = 6 if dry else 60 if args.quick else 200
    warm = GanLossConfig(adversarial_warmup=n // 10, identity_warmup=n // 10)
    rows.append(loop(sets, gan, n, 2 if dry else 10, gan=warm, batch=2 if dry else 16))
    print(json.dumps(rows[-1]), flush=True)
    for arch in (big, gan):
        rows.append(draw_speed(arch, 4 if dry else 64))
    out = Path(os.environ.get("OUT") or ROOT / "bench_out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(rows, indent=1, default=str))
    keys = ["samples_per_s", "step_ms", "tflops", "pct_bf16_peak", "data_wait_pct", "rel_err",
            "faces_per_s", "peak_mem_gb", "loss_first_last", "ok"]  # fmt: skip
    for r in rows:
        cells = []
        for k in keys:
            if k in r:
                v = r[k]
                cells.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
        print(f"{r['case']:<62} " + " ".join(cells))


if __name__ == "__main__":
    main()
