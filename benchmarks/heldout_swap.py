"""Swap quality on held-out frames at a fixed training budget (issue 4's acceptance check).

The woman's clip is cut in two with PyAV: frames 0-399 train the model (with the man's two
clips), frames 400-471 are never seen in training. The held-out part is converted to the man's
face and `facetwin eval` measures the share of swapped faces that the 128-D embedding places
nearer the man than the woman (ID retrieval).

    python benchmarks/heldout_swap.py [--minutes 20] [--arch lite] [--out bench_out/heldout]

Rerunning continues the same model (the trainer resumes), so the budget adds up.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
WOMAN = ROOT / "data/video/WolfgangLanger_Pexels.mp4"
MAN = [ROOT / "data/video/single_face.mp4", ROOT / "data/video/face_noface.mov"]
SPLIT = 400


def cut(src: Path, dst: Path, start: int, stop: int | None) -> Path:
    """Re-encode frames [start, stop) of ``src`` (real frames, near-lossless H.264)."""
    if dst.exists():
        return dst
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s_in = inp.streams.video[0]
        s = out.add_stream("libx264", rate=s_in.average_rate, options={"crf": "12"})
        s.width, s.height, s.pix_fmt = (
            s_in.codec_context.width,
            s_in.codec_context.height,
            "yuv420p",
        )
        for i, f in enumerate(inp.decode(s_in)):
            if i >= start and (stop is None or i < stop):
                img = f.to_ndarray(format="rgb24")
                for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(p)
        for p in s.encode():
            out.mux(p)
    return dst


def prepare(out: Path) -> tuple[Path, Path, Path]:
    """The split clips and face sets under ``out`` (made once): (A's training face set, B's face
    set, the held-out clip)."""
    from facetwin.extract.pipeline import ExtractConfig, extract

    out.mkdir(parents=True, exist_ok=True)
    train_clip = cut(WOMAN, out / "woman_train.mp4", 0, SPLIT)
    test_clip = cut(WOMAN, out / "woman_heldout.mp4", SPLIT, None)
    fs_a, fs_b = out / "fs_woman_train", out / "fs_man"
    extract([train_clip], fs_a, ExtractConfig(progress=False))
    extract(MAN, fs_b, ExtractConfig(progress=False))  # type: ignore[arg-type]
    return fs_a, fs_b, test_clip


def main() -> None:
    from facetwin.convert.pipeline import ConvertConfig, convert
    from facetwin.eval import EvalConfig, evaluate
    from facetwin.train.trainer import TrainConfig, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--arch", default="lite")
    ap.add_argument("--out", default=str(ROOT / "bench_out" / "heldout"))
    a = ap.parse_args()
    out = Path(a.out)
    fs_a, fs_b, test_clip = prepare(out)
    model = out / f"model_{a.arch}"
    result = train(
        TrainConfig(
            faceset_a=str(fs_a),
            faceset_b=str(fs_b),
            model_dir=str(model),
            arch=a.arch,
            minutes=a.minutes,
        ),
        progress=False,
    )
    swapped = out / "heldout_as_man.mp4"
    convert(test_clip, model, swapped, ConvertConfig(direction="a2b", progress=False))
    m = evaluate(
        test_clip,
        swapped,
        model_dir=model,
        faceset_a=fs_a,
        faceset_b=fs_b,
        output_dir=out / "report",
        cfg=EvalConfig(progress=False),
    )
    row = {
        "arch": a.arch,
        "minutes_this_run": a.minutes,
        "iterations": result.iterations,
        "samples_per_s": round(result.samples_per_s, 1),
        "heldout_frames": m["frames"]["compared"],  # type: ignore[index]
        "swap_found_rate": m["frames"]["swap_found_rate"],  # type: ignore[index]
        "id_retrieval": m["identity"]["id_retrieval"],  # type: ignore[index]
        "swap_to_b_mean": m["identity"]["swap_to_b_mean"],  # type: ignore[index]
        "swap_to_a_mean": m["identity"]["swap_to_a_mean"],  # type: ignore[index]
        "pose_error_mean": m["attributes"]["pose_error_mean"],  # type: ignore[index]
    }
    for k, v in row.items():
        print(f"{k:18s} {v}")
    (out / "heldout.json").write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
