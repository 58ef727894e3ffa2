"""Extraction on a Ray cluster: the sources split into tasks, each extracted into a shard, the
shards merged in order by the face set's one writer.

A task is one video, or a batch of photos (a photo alone is too little work to be worth a task:
each task loads the detector, landmark and identity models once). Each task runs the ordinary
:class:`~facetwin.extract.pipeline.Extractor` into a private shard face set under
``FACESET/.shards/`` with the run's settings and reference identities, so a worker extracts
exactly what the single process would. The driver merges each finished shard into the face set
(``faceset/merge.py``) in the order a single process would have processed the sources (photos,
then videos, as given), so the face set is the single-process one, row for row.

A video is not cut into segments here, unlike convert: extract's tracker carries state from
frame to frame (faces followed near where they were, identity reused along a track, gaps
bridged and landmarks smoothed over the whole track), and a cut would change the faces next to
it. Many videos, or many photos, spread over the workers; one long video does not.

Fault tolerance comes from the shards: a task whose worker dies is retried by Ray and its
extraction resumes from what the shard committed; a killed driver's rerun merges the shards that
finished, and the face set's own resume skips every source already merged.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facetwin.cluster import TASK_RETRIES, RayConfig, connect, wait_all
from facetwin.device import resolve_device
from facetwin.extract.config import ExtractConfig, ExtractSummary
from facetwin.extract.detectors import create_detector
from facetwin.extract.identity import Embedder
from facetwin.extract.inputs import Source
from facetwin.extract.pipeline import Extractor, extract, run_sources
from facetwin.faceset import FaceSet
from facetwin.faceset.merge import merge_into

log = logging.getLogger(__name__)

#: Photos per task: enough that loading the models (about a second) is not most of a task.
PHOTOS_PER_TASK = 16
SHARDS = ".shards"


@dataclass
class ShardReport:
    """What one task did: the Extractor's counts, and its time split for "where time goes"."""

    index: int
    frames_done: int
    skipped: list[str] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load_seconds: float = 0.0


def plan_tasks(sources: list[Source], done: set[str]) -> list[list[Source]]:
    """The sources not yet in the face set, as tasks in single-process order: the photos in
    batches of :data:`PHOTOS_PER_TASK`, then each video alone."""
    todo = [s for s in sources if str(s[0].resolve()) not in done]
    photos = [s for s in todo if s[1] == "image"]
    videos = [s for s in todo if s[1] == "video"]
    batches = [photos[i : i + PHOTOS_PER_TASK] for i in range(0, len(photos), PHOTOS_PER_TASK)]
    return batches + [[v] for v in videos]


def shard_name(task: list[Source]) -> str:
    """A task's shard folder name, the same on every run of the same inputs (so a rerun
    resumes it)."""
    key = "\n".join(str(p.resolve()) for p, _, _ in task)
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def extract_shard(
    task: list[Source], shard: str, cfg: ExtractConfig, refs: np.ndarray, index: int
) -> ShardReport:
    """Extract ``task``'s sources into the face set ``shard`` (a Ray task; resumes a shard a
    killed attempt left)."""
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    det = create_detector(cfg.detector, device=device, settings=cfg.detector_settings())
    embed = Embedder(cfg.embedder, device=device)
    fs = FaceSet.create(shard, cfg.settings(refs))
    ex = Extractor(fs, det, cfg, refs, embed)
    loaded = time.perf_counter()
    try:
        run_sources(ex, task, 0, False)
    finally:
        ex.pool.shutdown(wait=True)
        fs.close()
    return ShardReport(
        index, ex.frames_done, ex.skipped, ex.no_face, time.perf_counter() - t0, loaded - t0
    )


@dataclass
class RayRun:
    """A :data:`~facetwin.extract.pipeline.SourceRunner` that runs the sources on Ray; keeps
    the tasks' reports for the caller (benchmarks: where the time goes)."""

    ray_cfg: RayConfig
    reports: list[ShardReport] = field(default_factory=list)
    merge_seconds: float = 0.0

    def __call__(self, ex: Extractor, sources: list[Source], total: int, progress: bool) -> None:
        tasks = plan_tasks(
            sources, {str(s["path"]) for s in ex.fs.sources() if s["status"] == "done"}
        )
        if not tasks:
            return
        root = ex.fs.root / SHARDS
        root.mkdir(exist_ok=True)
        shards = [root / shard_name(t) for t in tasks]
        cfg = replace(ex.cfg, progress=False)
        finished: dict[int, ShardReport] = {}
        bar = tqdm(total=len(tasks), desc="extract (ray)", unit="task", disable=not progress)
        with connect(self.ray_cfg) as ray, bar:
            task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(extract_shard)
            refs = [
                task.remote(t, str(s), cfg, ex.refs, i)
                for i, (t, s) in enumerate(zip(tasks, shards))
            ]

            def merge_ready(report: ShardReport) -> None:
                # merge strictly in order: source ids must come out as a single process's
                finished[report.index] = report
                while len(self.reports) in finished:
                    r = finished.pop(len(self.reports))
                    self._merge(ex, shards[r.index], r)
                    bar.update(1)

            wait_all(ray, refs, merge_ready)
        shutil.rmtree(root, ignore_errors=True)

    def _merge(self, ex: Extractor, shard: Path, report: ShardReport) -> None:
        t0 = time.perf_counter()
        with FaceSet.open(shard) as fs:
            merge_into(ex.fs, fs)
        shutil.rmtree(shard, ignore_errors=True)
        ex.frames_done += report.frames_done
        ex.skipped += report.skipped
        ex.no_face += report.no_face
        self.reports.append(report)
        self.merge_seconds += time.perf_counter() - t0


def extract_on_ray(
    inputs: list[str | Path],
    output: str | Path,
    cfg: ExtractConfig | None = None,
    ray_cfg: RayConfig | None = None,
) -> ExtractSummary:
    """:func:`~facetwin.extract.pipeline.extract` with the sources processed on Ray: the same
    checks, lock, resume and summary, and the same face set."""
    return extract(inputs, output, cfg, run=RayRun(ray_cfg or RayConfig()))


__all__ = ["RayRun", "ShardReport", "extract_on_ray", "extract_shard", "plan_tasks"]
