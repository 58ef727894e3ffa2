"""One conversion run (:class:`Converter`): what every input kind shares.

An image, a folder, a preview and a video differ in how they read and write (``stills.py``,
``video.py``), but they find faces and draw the output frame the same way: the source person's
faces come from a face set's stored landmarks or from detection, and each frame is swapped,
optionally put beside the original and watermarked. Those shared steps and the run's state
(model, settings, timer, the open face set) live here, so the input kinds are plain functions
of a ``Converter``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.convert.blend import BLENDERS, BlendParams
from facetwin.convert.color import COLOR_MATCHERS
from facetwin.convert.config import ConvertConfig, plugin_record
from facetwin.convert.faces import (
    FacePlan,
    check_faceset_identity,
    detect_faces,
    moved_source,
    plan_from_records,
)
from facetwin.convert.occlusion import OcclusionConfig
from facetwin.convert.outputs import FrameLabeller, write_output_image
from facetwin.convert.swap import SwapModel, Swapper, Timer
from facetwin.device import resolve_device
from facetwin.errors import InputError, ModelMismatchError, NoFaceError
from facetwin.extract.detect import SecondDetector, second_detector_name
from facetwin.faceset import FaceSet

log = logging.getLogger(__name__)

#: Settings that change how a conversion runs but not what it makes: a run with other values
#: of these resumes the same job.
RUN_ONLY = ("progress", "device", "threads", "ray", "ray_workers")


def make_swapper(model: SwapModel, cfg: ConvertConfig, timer: Timer) -> Swapper:
    """The per-frame swap the settings ask for: the target side's decoder, the colour and blend
    plugins, and occlusion through the source side's own decoder."""
    return Swapper(
        model=model,
        side=cfg.target_side,
        color=COLOR_MATCHERS.bind(cfg.color, cfg.settings_of(cfg.color)),
        blend=BLENDERS.bind(cfg.blend, cfg.settings_of(cfg.blend)),
        params=BlendParams(erode=cfg.erode, feather=cfg.feather, sharpen=cfg.sharpen),
        timer=timer,
        source_side=cfg.source_side,
        occlusion=OcclusionConfig(enabled=cfg.occlusion, hands=cfg.hands),
    )


class Converter:
    """One conversion run. Use :func:`facetwin.convert.convert`."""

    def __init__(self, model: SwapModel, cfg: ConvertConfig) -> None:
        self.model = model
        self.cfg = cfg
        self.timer = Timer()
        self.swapper = make_swapper(model, cfg, self.timer)
        self.labeller = FrameLabeller()
        self.faceset = FaceSet.open(cfg.faceset) if cfg.faceset else None
        self.reference = model.identity_embedding(cfg.source_side)
        if self.faceset is not None:
            self.reference = self._check_faceset(self.faceset)
        if self.reference is None:
            log.info(
                "the model records no identity for side %s: every face is swapped", cfg.source_side
            )
        self._detector: Any = None
        self.second = SecondDetector(
            second_detector_name(cfg.detector, cfg.photo_detector), cfg.device, cfg.max_detect_side
        )

    def _check_faceset(self, fs: FaceSet) -> np.ndarray | None:
        """The reference identity, once ``fs`` is known to show the model's source person (it is
        closed and ModelMismatchError raised if not): the model's, else the face set's mean."""
        other = self.model.identity_embedding(self.cfg.target_side)
        try:
            check_faceset_identity(
                fs, self.reference, other, self.cfg.source_side, self.cfg.threshold
            )
        except ModelMismatchError:
            fs.close()
            raise
        return fs.mean_embedding() if self.reference is None else self.reference

    def close(self) -> None:
        if self.faceset is not None:
            self.faceset.close()

    # faces ------------------------------------------------------------------------------
    @property
    def detector(self) -> Any:
        """The face detector, created on first use: a face set's run never loads one."""
        if self._detector is None:
            from facetwin.extract.detectors import create_detector

            self._detector = create_detector(
                self.cfg.detector,
                resolve_device(self.cfg.device),
                self.cfg.settings_of(self.cfg.detector),
            )
        return self._detector

    def plan_from_faceset(self, fs: FaceSet, path: Path) -> FacePlan:
        """The plan for ``path`` from a face set that holds it (ModelMismatchError if not)."""
        row = fs.source(str(path.resolve())) or moved_source(fs, path)
        if row is None:
            raise ModelMismatchError(
                f"face set {fs.root} holds no faces of {path}; extract it into the face set "
                "or leave out the face set"
            )
        if row["status"] != "done":
            raise InputError(
                f"face set {fs.root}: the extraction of {path} is unfinished; rerun extract"
            )
        every = fs.every
        recs = fs.faces(include_bridged=True, source_id=int(row["id"]))
        return plan_from_records(
            recs, self.reference, self.cfg.threshold, self.cfg.smooth, self.cfg.scale_sigma, every
        )

    def plan_image(self, path: Path, image: np.ndarray) -> FacePlan:
        """The faces to swap in one image: from the face set when there is one, else detected."""
        if self.faceset is not None:
            return self.plan_from_faceset(self.faceset, path)
        with self.timer("detect"):
            return detect_faces(
                image,
                self.detector,
                self.cfg.max_detect_side,
                self.reference,
                self.cfg.threshold,
                self.second,
            )

    def no_face_error(self, what: str, plan: FacePlan) -> NoFaceError:
        """The error for an input with nothing to swap, saying whether faces were seen at all."""
        if plan.found == 0:
            return NoFaceError(f"{what}: no face found")
        closest = "" if plan.closest is None else f", closest identity distance {plan.closest:.2f}"
        return NoFaceError(
            f"{what}: {plan.found} faces found, but none of the model's side "
            f"{self.cfg.source_side} person (threshold {self.cfg.threshold}{closest})"
        )

    # frames -----------------------------------------------------------------------------
    def render(
        self, frame: np.ndarray, faces: list[np.ndarray], label: bool, index: int | None = None
    ) -> np.ndarray:
        """The output frame: swapped, optionally beside the original, optionally watermarked.
        ``index``: the frame's number in its video (None: a photo); the swap counts it from each
        output segment's start, so that a segment renders the same however it is reached."""
        local = None if index is None else index % self.cfg.segment_frames
        out = self.swapper.swap_frame(frame, faces, local)
        if self.cfg.side_by_side:
            out = np.hstack([frame, out])
        if label:
            with self.timer("label"):
                out = self.labeller(out)
        return out

    def save_image(self, path: Path, image: np.ndarray) -> None:
        """Write a converted image, labelled unless the settings turn labels off."""
        with self.timer("encode"):
            write_output_image(path, image, self.model.model_id, self.cfg)

    # resuming ---------------------------------------------------------------------------
    def job(self, path: Path | None) -> dict[str, Any]:
        """What makes a conversion the same job: the input (as stored), model and settings."""
        job: dict[str, Any] = {
            "model_id": self.model.model_id,
            "config": {k: v for k, v in asdict(self.cfg).items() if k not in RUN_ONLY},
        }
        # only settings off their defaults: a job from before plugins had settings, or one
        # that names a default, is the same job
        job["config"].pop("plugin_settings")
        if plugins := plugin_record(self.cfg):
            job["config"]["plugin_settings"] = plugins
        if path is not None:
            stat = path.stat()
            job.update(input=str(path.resolve()), bytes=stat.st_size, mtime_ns=stat.st_mtime_ns)
        return job


__all__ = ["Converter", "make_swapper"]
