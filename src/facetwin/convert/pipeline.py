"""``facetwin convert``: swap the faces of an image, a folder of images or a video.

Per frame: the faces of the model's source identity are located (a face set's smoothed
landmarks, or detection), cut out with their alignment matrix, run through the shared encoder
and the *other* identity's decoder (a2b: faces of A are drawn by decoder B), recoloured, warped
back with the inverse matrix and blended. Everything else in the frame is left as it was.

Video runs in two passes over the input, both streamed with constant memory:

1. faces: without ``faceset=``, extract's own pipeline (detection, tracking, gap bridging,
   smoothing) writes a small face set into ``OUTPUT.parts/`` - crash-safe and resumable like any
   extraction - and its smoothed landmarks are used by frame index;
2. frames: decode, swap, label, and encode into segment files in ``OUTPUT.parts/``; the segments
   are then remuxed with the input's audio into OUTPUT and the parts removed.

An interrupted run resumes: a rerun with the same input, model and settings finds the face set
and the finished segments and continues after them.

Every output is labelled as synthetic (invisible watermark + metadata tag, see
facetwin.label) unless ``label=False``, which is logged as a warning.

Where things are: this module is the entry point (:func:`convert`: check the request, load the
model, take the output's lock, dispatch on the input kind, summarise). The run's shared state
and steps (face plans, rendering a frame) are :class:`~facetwin.convert.converter.Converter`;
images, folders and previews are ``stills.py``; video is ``video.py``; the per-frame swap is
``swap.py``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from facetwin.cluster import RayConfig
from facetwin.convert.config import (
    ConvertConfig,
    ConvertSummary,
    Outcome,
    check_output,
    image_output_path,
    input_kind,
    validate,
)
from facetwin.convert.converter import Converter
from facetwin.convert.on_ray import convert_video_on_ray
from facetwin.convert.stills import convert_folder, convert_image, convert_preview
from facetwin.convert.swap import SwapModel, load_swap_model
from facetwin.convert.video import convert_video, parts_folder
from facetwin.device import torch_threads
from facetwin.errors import InputError, NoFaceError, UsageError
from facetwin.lock import exclusive
from facetwin.media.files import make_folder

log = logging.getLogger(__name__)

#: A model folder (or snapshot), or an already loaded model (tests, benchmarks).
ModelArg = str | Path | SwapModel | tuple[Any, dict[str, Any]]


def _convert_locked(conv: Converter, src: Path, dst: Path, kind: str, model: ModelArg) -> Outcome:
    """The conversion itself, once the output is ours. A video run that fails on its input
    (damaged, or no face) removes the ``.parts`` folder it made: there is nothing to resume."""
    if conv.cfg.preview is not None:
        return convert_preview(conv, src, kind, dst)
    if kind == "image":
        return convert_image(conv, src, dst)
    if kind == "folder":
        return convert_folder(conv, src, dst)
    parts = parts_folder(dst)
    had_parts = parts.exists()
    try:
        if conv.cfg.ray is None:
            return convert_video(conv, src, dst)
        return _video_on_ray(conv, src, dst, model)
    except (InputError, NoFaceError):
        if not had_parts:
            shutil.rmtree(parts, ignore_errors=True)
        raise


def _video_on_ray(conv: Converter, src: Path, dst: Path, model: ModelArg) -> Outcome:
    """The video on Ray (``convert/on_ray.py``); the tasks' stage times join the summary's."""
    if not isinstance(model, (str, Path)):
        raise UsageError("converting on Ray needs a model folder (its workers load it by path)")
    ray_cfg = RayConfig(address=str(conv.cfg.ray), workers=conv.cfg.ray_workers)
    outcome, reports = convert_video_on_ray(conv, model, src, dst, ray_cfg)
    for r in reports:
        for stage, secs in r.timings.items():
            conv.timer.seconds[f"workers_{stage}"] += secs
        conv.timer.seconds["workers_load"] += r.load_seconds
    return outcome


def _convert_owned(conv: Converter, src: Path, dst: Path, kind: str, model: ModelArg) -> Outcome:
    """Take the output, then convert. One writer per video or folder output (its ``.parts``
    folder or journal is resumable state); a single image is written atomically, no lock."""
    make_folder(dst.parent)
    locked = conv.cfg.preview is None and kind in ("video", "folder")
    if locked and kind == "folder":
        make_folder(dst)  # first, so that its lock lives inside it on every run
    with exclusive(dst, f"output {dst}") if locked else contextlib.nullcontext():
        return _convert_locked(conv, src, dst, kind, model)


def _summary(
    src: Path, dst: Path, kind: str, result: Outcome, secs: float, conv: Converter
) -> ConvertSummary:
    """The run's report: the outcome's counts, its speed and its time split by stage."""
    return ConvertSummary(
        input=str(src),
        output=str(dst),
        kind="preview" if conv.cfg.preview is not None else kind,
        frames=result.frames,
        frames_swapped=result.frames_swapped,
        faces_swapped=result.faces_swapped,
        faces_other=result.faces_other,
        seconds=round(secs, 2),
        frames_per_second=round(result.frames / secs, 2) if secs else 0.0,
        timings=conv.timer.rounded(),
        audio=result.audio,
        resumed_segments=result.resumed_segments,
        labelled=conv.cfg.label,
        skipped=result.skipped,
    )


def convert(
    input: str | Path,
    model_dir: ModelArg,
    output: str | Path,
    cfg: ConvertConfig | None = None,
) -> ConvertSummary:
    """Swap the faces of ``input`` (image, folder of images or video) into ``output``.

    ``model_dir`` is a trained model folder (or snapshot), or an already loaded model:
    ``(module, meta)`` or a :class:`SwapModel`.
    """
    cfg = cfg or ConvertConfig()
    validate(cfg)
    src, dst = Path(input), Path(output)
    kind = input_kind(src)
    check_output(src, dst, kind, cfg)
    if not cfg.label:
        log.warning("labelling is off: %s will NOT say that it is synthetic", dst)
    t0 = time.perf_counter()
    model = load_swap_model(model_dir, cfg.device)
    if cfg.preview is not None:
        dst = image_output_path(dst)
    conv = Converter(model, cfg)  # reads --faceset: a damaged one fails here, before any write
    try:
        with torch_threads(cfg.threads):
            result = _convert_owned(conv, src, dst, kind, model_dir)
    finally:
        conv.close()
    return _summary(src, dst, kind, result, time.perf_counter() - t0, conv)


__all__ = ["ConvertConfig", "ConvertSummary", "Converter", "convert"]
