"""Batch work on Ray against the single process, on this machine's cores (issue 14).

Rows:
* ``convert``: the woman's clip (data/video/WolfgangLanger_Pexels.mp4, 640x360, 472 frames)
  converted from its face set with a freshly initialised ``lite`` model (speed does not depend
  on training) - in this process, and on a local Ray cluster of 1 and 2 workers (one task per
  ``segment_frames`` segment). Split: Ray start-up, per-task set-up (model load), the tasks'
  decode/model/blend/encode, and the driver's join.
* ``extract``: both bundled clips and the bundled photos, in this process and on Ray with 1 and
  2 workers (a task per video or per 16 photos). Split: per-task set-up and the driver's merge.
* ``writer``: the single writer's ceiling - faces/s that merging shards into one face set
  sustains (rows in one transaction per source, images hard-linked), measured on the shards
  of the extract rows.

On 2 cores Ray cannot gain much: its own processes (GCS, raylet) share the cores, and a torch
thread per worker replaces the single process's two. The point is the overhead per task and
where the time goes, from which docs/scale.md projects 10 and 100 nodes.

    python benchmarks/bench_scale.py [--quick] [--publish]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from facetwin.cluster import RayConfig, connect
from facetwin.convert import ConvertConfig, convert
from facetwin.extract.on_ray import RayRun
from facetwin.extract.pipeline import ExtractConfig, extract
from facetwin.faceset import FaceSet
from facetwin.faceset.merge import merge_into
from facetwin.media.video import copy_head
from publish import PUBLISH_HELP, write_result

ROOT = Path(__file__).resolve().parents[1]
WOMAN = ROOT / "data" / "video" / "WolfgangLanger_Pexels.mp4"
MAN = ROOT / "data" / "video" / "single_face.mp4"
PHOTOS = ROOT / "data" / "images"


def ray_startup_seconds(workers: int) -> float:
    """Seconds to start (and stop) a local cluster of ``workers``: the fixed cost of --ray."""
    t0 = time.perf_counter()
    with connect(RayConfig(workers=workers)) as ray:
        ray.get(ray.remote(lambda: 0).remote())  # a worker up and answering
    return round(time.perf_counter() - t0, 2)


def lite_model(folder: Path, faceset_a: Path, faceset_b: Path) -> Path:
    """A ``lite`` model folder with near-fresh weights (2 training iterations)."""
    from facetwin.train.trainer import TrainConfig, train

    cfg = TrainConfig(
        faceset_a=str(faceset_a), faceset_b=str(faceset_b), model_dir=str(folder), arch="lite",
        iterations=2, batch=4, workers=0, save_every=2, preview_every=0,
    )  # fmt: skip
    train(cfg, progress=False)
    return folder


def convert_rows(work: Path, clip: Path, faceset: Path, model: Path) -> list[dict]:
    rows = []
    for workers in (0, 1, 2):
        cfg = ConvertConfig(
            faceset=str(faceset), progress=False, segment_frames=60,
            ray="local" if workers else None, ray_workers=workers,
        )  # fmt: skip
        s = convert(clip, model, work / f"out{workers}.mp4", cfg)
        t = s.timings
        tasks = {k.removeprefix("workers_"): v for k, v in t.items() if k.startswith("workers_")}
        rows.append(
            {
                "bench": "convert",
                "workers": workers or "single process",
                "frames": s.frames,
                "seconds": s.seconds,
                "frames_per_s": s.frames_per_second,
                "task_seconds": round(sum(tasks.values()), 2) if tasks else None,
                "task_split": tasks or {k: round(v, 2) for k, v in t.items()},
            }
        )
    return rows


def extract_rows(work: Path, inputs: list[Path]) -> tuple[list[dict], float]:
    rows, merge_rate = [], 0.0
    for workers in (0, 1, 2):
        out = work / f"fs{workers}"
        cfg = ExtractConfig(progress=False)
        run = RayRun(RayConfig(workers=workers)) if workers else None
        t0 = time.perf_counter()
        s = extract(inputs, out, cfg, run=run)
        secs = time.perf_counter() - t0
        row = {
            "bench": "extract",
            "workers": workers or "single process",
            "frames": s.frames,
            "faces": s.faces,
            "seconds": round(secs, 2),
            "frames_per_s": round(s.frames / secs, 2),
        }
        if run is not None:
            row["task_setup_s"] = round(sum(r.load_seconds for r in run.reports), 2)
            row["task_seconds"] = round(sum(r.seconds for r in run.reports), 2)
            row["merge_s"] = round(run.merge_seconds, 3)
            merge_rate = max(merge_rate, s.faces / run.merge_seconds)
        rows.append(row)
    return rows, merge_rate


def writer_row(work: Path, source: Path, repeats: int) -> dict:
    """Faces/s into one face set by merging: ``source``'s sources merged ``repeats`` times
    into fresh sets (the writer alone: no detection, no Ray)."""
    faces, secs = 0, 0.0
    with FaceSet.open(source) as shard:
        settings = shard.settings()
        for i in range(repeats):
            with FaceSet.create(work / f"merged{i}", settings) as target:
                t0 = time.perf_counter()
                merge_into(target, shard)
                secs += time.perf_counter() - t0
                faces += target.counts()["faces"]
    return {
        "bench": "writer",
        "faces": faces,
        "seconds": round(secs, 3),
        "faces_per_s": round(faces / secs, 1),
    }


def run(quick: bool = False) -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = copy_head(WOMAN, work / "woman.mp4", 4.0) if quick else WOMAN
        fs = work / "woman.fs"
        extract([clip], fs, ExtractConfig(progress=False))
        extract([MAN], work / "man.fs", ExtractConfig(progress=False))
        model = lite_model(work / "model", fs, work / "man.fs")
        rows.append({"bench": "ray start-up", "workers": 2, "seconds": ray_startup_seconds(2)})
        rows += convert_rows(work, clip, fs, model)
        ext, merge_rate = extract_rows(work, [clip, MAN, PHOTOS])
        rows += ext
        rows.append(writer_row(work, work / "fs0", 2 if quick else 5))
        rows[-1]["merge_faces_per_s_in_ray_run"] = round(merge_rate, 1)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 s of the clip")
    ap.add_argument("--publish", action="store_true", help=PUBLISH_HELP)
    a = ap.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    rows = run(a.quick)
    for r in rows:
        print("  ".join(f"{k}={v}" for k, v in r.items()))
    write_result("scale", rows, a.publish)


if __name__ == "__main__":
    main()
