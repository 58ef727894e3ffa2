"""Conversion speed: frames/s on data/video/single_face.mp4 (640x360) and where the time goes.

Rows: the ``original`` and ``lite`` architectures, each converting the whole clip from scratch
(detection included: convert extracts the faces itself), plus ``lite`` from a ready face set
(detection excluded: what a second conversion of the same video costs). Weights are freshly
initialised - the speed of a model does not depend on its training.

The time split is the summary's: detect (extract pass), decode, model (the network), blend
(cut, recolour, warp back, blend), label (watermark), encode (x264 segments and the final remux).

    python benchmarks/bench_convert.py [--quick]     # table + bench_out/convert.json
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from facetwin.convert import ConvertConfig, convert
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.media.video import copy_head
from facetwin.train.models import arch_info, build_model
from publish import PUBLISH_HELP, text_table, write_result

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "data" / "video" / "single_face.mp4"
OUT = ROOT / "bench_out" / "convert.json"
STAGES = ("detect", "decode", "model", "blend", "label", "encode")


def cut(src: Path, dst: Path, seconds: float) -> Path:
    """The first ``seconds`` of a clip, packets copied (no re-encoding)."""
    return copy_head(src, dst, seconds)


def model(arch: str) -> tuple[torch.nn.Module, dict]:
    """Fresh weights, warmed up: the first few passes of a network pay one-off kernel set-up
    (tens of ms each), which a 72-frame clip would otherwise count as conversion speed."""
    torch.manual_seed(0)
    info = arch_info(arch)
    meta = {
        "arch": arch,
        "input_size": info.input_size,
        "output_size": info.output_size,
        "coverage": info.default_coverage,
        "model_id": f"bench-{arch}",
    }
    net = build_model(arch).eval()
    with torch.inference_mode():
        for _ in range(5):
            net(torch.zeros(1, 3, info.input_size, info.input_size), "b")
    return net, meta


def row(name: str, arch: str, summary) -> dict:  # type: ignore[no-untyped-def]
    t = summary.timings
    return {
        "case": name,
        "arch": arch,
        "frames": summary.frames,
        "faces": summary.faces_swapped,
        "seconds": summary.seconds,
        "frames_per_s": summary.frames_per_second,
        **{
            f"{k}_ms_per_frame": round(1000 * t.get(k, 0.0) / max(summary.frames, 1), 2)
            for k in STAGES
        },
    }


def run(quick: bool = False) -> list[dict]:
    """Convert the clip with each case; one dict per case (see the module docstring)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = cut(CLIP, work / "clip.mp4", 1.0) if quick else CLIP
        faceset = work / "faceset"
        extract([clip], faceset, ExtractConfig(progress=False))
        cases = [("from scratch", "lite", None), ("from face set", "lite", faceset)]
        if not quick:
            cases.insert(0, ("from scratch", "original", None))
        for name, arch, fs in cases:
            cfg = ConvertConfig(progress=False, faceset=str(fs) if fs else None)
            out = work / f"{arch}-{len(rows)}.mp4"
            rows.append(row(name, arch, convert(clip, model(arch), out, cfg)))
    return rows


def table(rows: list[dict]) -> str:
    head = ["case", "arch", "frames", "frames_per_s"] + [f"{s}_ms_per_frame" for s in STAGES]
    short = ["case", "arch", "frames", "fps"] + [f"{s} ms" for s in STAGES]
    return text_table(rows, head, short)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a 1 s cut, lite only")
    p.add_argument("--publish", action="store_true", help=PUBLISH_HELP)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    rows = run(quick=a.quick)
    print(table(rows))
    extra = {"clip": str(CLIP.relative_to(ROOT)), "quick": a.quick}
    write_result("convert", rows, a.publish, seconds=round(time.perf_counter() - t0, 1), **extra)


if __name__ == "__main__":
    main()
