"""How many torch threads a batch-of-one model call should use: 1 or 2, on an idle machine and
with one core kept busy by another process (what a shared machine, or convert's own decode and
encode threads, do to it).

Rows: the ``lite`` model's forward on one 64 px face, ms per call; and a conversion of 4 s of
the woman's clip (98 frames, from its face set) at ``--threads 1`` and ``2``, in seconds with
its model time. Why it matters: ``facetwin convert`` and the studio's live swap default to one
thread (``device.torch_threads``).

    python benchmarks/bench_threads.py [--publish]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import torch

from facetwin.convert import ConvertConfig, convert
from facetwin.device import torch_threads
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.media.video import copy_head
from facetwin.train.models import arch_info, build_model
from publish import PUBLISH_HELP, write_result

ROOT = Path(__file__).resolve().parents[1]
WOMAN = ROOT / "data" / "video" / "WolfgangLanger_Pexels.mp4"
MAN = ROOT / "data" / "video" / "single_face.mp4"


def _spin(stop: mp.Event) -> None:  # type: ignore[valid-type]
    while not stop.is_set():  # type: ignore[attr-defined]
        sum(range(10_000))


class BusyCore:
    """Another process spinning on one core for the duration of the block."""

    def __enter__(self) -> BusyCore:
        self.stop = mp.Event()
        self.proc = mp.Process(target=_spin, args=(self.stop,), daemon=True)
        self.proc.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.proc.join()


def forward_ms(threads: int, calls: int = 60) -> float:
    torch.manual_seed(0)
    net = build_model("lite").eval()
    size = arch_info("lite").input_size
    x = torch.rand(1, 3, size, size)
    with torch_threads(threads), torch.inference_mode():
        for _ in range(5):
            net(x, "b")
        t0 = time.perf_counter()
        for _ in range(calls):
            net(x, "b")
    return round((time.perf_counter() - t0) / calls * 1000, 2)


def convert_seconds(work: Path, threads: int, clip: Path, fs: Path, model: Path) -> dict:
    out = work / f"t{threads}.mp4"
    out.unlink(missing_ok=True)
    cfg = ConvertConfig(faceset=str(fs), progress=False, threads=threads)
    s = convert(clip, model, out, cfg)
    return {"seconds": s.seconds, "model_s": round(s.timings.get("model", 0.0), 2)}


def run(quick: bool = False) -> list[dict]:
    from facetwin.train.trainer import TrainConfig, train

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = copy_head(WOMAN, work / "w.mp4", 4.0)
        extract([clip], work / "w.fs", ExtractConfig(progress=False))
        extract([MAN], work / "m.fs", ExtractConfig(progress=False))
        cfg = TrainConfig(
            faceset_a=str(work / "w.fs"), faceset_b=str(work / "m.fs"),
            model_dir=str(work / "model"), arch="lite", iterations=2, batch=4, workers=0,
            save_every=2, preview_every=0,
        )  # fmt: skip
        train(cfg, progress=False)
        for busy in (False, True):
            with BusyCore() if busy else contextlib.nullcontext():
                for threads in (1, 2):
                    row = {"bench": "threads", "other_core": "busy" if busy else "idle"}
                    row["threads"] = threads
                    row["lite_forward_ms"] = forward_ms(threads)
                    row.update(convert_seconds(work, threads, clip, work / "w.fs", work / "model"))
                    rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--publish", action="store_true", help=PUBLISH_HELP)
    a = ap.parse_args()
    rows = run()
    for r in rows:
        print("  ".join(f"{k}={v}" for k, v in r.items()))
    write_result("threads", rows, a.publish)


if __name__ == "__main__":
    main()
