"""The interactive merger: one frame of a video swapped with the settings on the page, fast
enough to follow a slider, then the whole video rendered with the same settings as a job.

The server keeps what is slow to make and does not change while the user moves a slider:
the loaded model (reloaded only when a newer snapshot appears), the detector, the decoded frames
and each frame's landmarks. A slider move then costs one swap of one frame (tens of ms for
``lite``) - the same :class:`Converter.render` the ``facetwin convert`` command runs per frame.

:class:`MergeSettings` is the one config of the two front ends: its fields are ConvertConfig's,
:meth:`MergeSettings.argv` spells them as ``facetwin convert`` flags, and :func:`settings_file`
writes both beside a rendered output, so the CLI can repeat the render exactly.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.convert.config import ConvertConfig, validate
from facetwin.convert.faces import detect_faces
from facetwin.convert.outputs import FrameLabeller
from facetwin.convert.pipeline import Converter
from facetwin.convert.swap import SwapModel, load_swap_model
from facetwin.device import resolve_device
from facetwin.media.files import atomic_write_bytes
from facetwin.media.image import encode_image
from facetwin.media.video import decode_frames, probe
from facetwin.model_meta import latest_snapshot

FRAME_CACHE = 48
SETTINGS_SUFFIX = ".convert.json"


@dataclass(frozen=True)
class MergeSettings:
    """The merger's knobs; each is the ConvertConfig field (and CLI flag) of the same name."""

    direction: str = "a2b"
    blend: str = "mask"
    color: str = "rct"
    erode: float = 0.06
    feather: float = 0.03
    sharpen: float = 0.5
    occlusion: bool = True
    threshold: float = 0.6

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> MergeSettings:
        """Typed fields from a request body; unknown keys are ignored, wrong types refused."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in doc:
                continue
            v = doc[f.name]
            default = getattr(cls, f.name)
            if isinstance(default, bool):
                if not isinstance(v, bool):
                    raise ValueError(f"{f.name} must be true or false")
            elif isinstance(default, float):
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise ValueError(f"{f.name} must be a number")
                v = float(v)
            elif not isinstance(v, str):
                raise ValueError(f"{f.name} must be a string")
            kw[f.name] = v
        out = cls(**kw)
        validate(out.config())  # UsageError for a value convert would refuse
        return out

    def config(self) -> ConvertConfig:
        return ConvertConfig(**asdict(self), progress=False)

    def argv(self) -> list[str]:
        """The same settings as ``facetwin convert`` flags."""
        out = [
            "--direction", self.direction,
            "--blend", self.blend,
            "--color", self.color,
            "--erode", f"{self.erode:g}",
            "--feather", f"{self.feather:g}",
            "--sharpen", f"{self.sharpen:g}",
            "--threshold", f"{self.threshold:g}",
        ]  # fmt: skip
        if not self.occlusion:
            out.append("--no-occlusion")
        return out


def convert_argv(video: str, model: str, output: str, settings: MergeSettings) -> list[str]:
    """The arguments of ``facetwin convert`` for a render (paths relative to the project)."""
    return [video, "-m", model, "-o", output, *settings.argv()]


def settings_file(output: Path, argv: list[str], settings: MergeSettings) -> Path:
    """Write ``OUTPUT.convert.json``: the settings and the exact command that repeats them."""
    path = output.with_name(output.name + SETTINGS_SUFFIX)
    doc = {"command": ["facetwin", "convert", *argv], "settings": asdict(settings)}
    atomic_write_bytes(path, json.dumps(doc, indent=1).encode())
    return path


@dataclass
class LoadedModel:
    snapshot: Path | None
    model: SwapModel


class ModelCache:
    """Loaded models by folder, reloaded when the trainer writes a newer snapshot."""

    def __init__(self, device: str = "auto") -> None:
        self.device = device
        self._models: dict[Path, LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, model_dir: Path) -> SwapModel:
        snap = latest_snapshot(model_dir)
        with self._lock:
            held = self._models.get(model_dir)
            if held is None or held.snapshot != snap:
                held = LoadedModel(snap, load_swap_model(model_dir, self.device))
                self._models = {model_dir: held}  # one model at a time: memory stays flat
            return held.model


class FrameCache:
    """Decoded frames by (video, index), least recently used dropped first."""

    def __init__(self, size: int = FRAME_CACHE) -> None:
        self.size = size
        self._frames: OrderedDict[tuple[Path, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, video: Path, index: int) -> np.ndarray:
        key = (video, index)
        with self._lock:
            if key in self._frames:
                self._frames.move_to_end(key)
                return self._frames[key]
        frame = next(iter(decode_frames(video, index)), None)
        if frame is None:
            raise ValueError(f"frame {index} is past the end of {video.name}")
        with self._lock:
            self._frames[key] = frame.image
            while len(self._frames) > self.size:
                self._frames.popitem(last=False)
        return frame.image


@dataclass(frozen=True)
class Rendered:
    jpeg: bytes
    faces: int
    milliseconds: float


class Merger:
    """The merger's server side: models, frames and landmarks kept between slider moves."""

    def __init__(self, models: ModelCache) -> None:
        self.models = models
        self.frames = FrameCache()
        self._plans: dict[tuple[Path, int, Path, str, float], list[np.ndarray]] = {}
        self._detector: Any = None
        self._lock = threading.Lock()
        self.labeller = FrameLabeller()  # its per-size watermark is made once, not per move

    @staticmethod
    def video_info(video: Path) -> dict[str, Any]:
        info = probe(video)
        return {"frames": info.frame_count, "fps": info.fps, "width": info.width,
                "height": info.height}  # fmt: skip

    def detector(self) -> Any:
        if self._detector is None:
            from facetwin.extract.detectors import create_detector

            self._detector = create_detector("dlib-hog", resolve_device(self.models.device))
        return self._detector

    def faces(
        self, video: Path, index: int, model_dir: Path, model: SwapModel, s: MergeSettings
    ) -> list[np.ndarray]:
        """Landmarks of the faces to swap in frame ``index`` (cached per frame and identity)."""
        key = (video, index, model_dir, s.direction, s.threshold)
        if key not in self._plans:
            frame = self.frames.get(video, index)
            ref = model.identity_embedding(s.direction[0])
            plan = detect_faces(frame, self.detector(), 1280, ref, s.threshold)
            self._plans[key] = plan.faces(0)
        return self._plans[key]

    def render(self, video: Path, index: int, model_dir: Path, s: MergeSettings) -> Rendered:
        """Frame ``index`` of ``video`` swapped with ``s``, labelled, as JPEG."""
        t0 = time.perf_counter()
        with self._lock:  # one swap at a time: the CPU is shared with the jobs
            model = self.models.get(model_dir)
            frame = self.frames.get(video, index)
            faces = self.faces(video, index, model_dir, model, s)
            conv = Converter(model, s.config())
            conv.labeller = self.labeller
            out = conv.render(frame, faces, label=True)
        jpeg = encode_image(out, ".jpg", 90)
        return Rendered(jpeg, len(faces), round(1000 * (time.perf_counter() - t0), 1))
