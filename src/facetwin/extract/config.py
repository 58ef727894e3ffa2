"""What an extraction is asked to do (:class:`ExtractConfig`, checked by :func:`check_config`)
and what it reports (:class:`ExtractSummary`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from facetwin.errors import UsageError
from facetwin.extract.detect import second_detector_name
from facetwin.extract.detectors import DETECTORS
from facetwin.extract.identity import SAME_PERSON
from facetwin.extract.landmarkers import DEFAULT_LANDMARKER, LANDMARKERS, PLAIN_LANDMARKER
from facetwin.face.tracking import SmoothConfig
from facetwin.registry import recorded_settings

log = logging.getLogger(__name__)


@dataclass
class ExtractConfig:
    detector: str = "dlib-hog"
    landmarker: str = DEFAULT_LANDMARKER  # 68 points (and maybe pose) of each detected face
    size: int = 256  # aligned crop side, pixels
    coverage: float = 2.0  # crop side in mean-face units: 1.0 tight central face, 2.0 full face
    every: int = 1  # process every N-th video frame
    refs: list[str] = field(default_factory=list)  # reference photos: keep only this person
    threshold: float = SAME_PERSON  # embedding distance for "same person"
    device: str = "auto"
    redetect_every: int = 8  # processed frames between full-frame detections on video
    embed_every: int = 10  # frames a track reuses its embedding for
    embedder: str = "torch"  # torch (port of dlib's network, ~7x faster) or dlib
    max_detect_side: int = 1280  # full-frame detection on frames shrunk to this longest side
    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    commit_every: int = 32  # frames per database transaction
    # hands cut out of the masks (with the frame's edge): a video face's neighbourhood searched
    # every N processed frames and on every frame while it has a hand (extract/occluders.py);
    # 0: no cuts (the masks are the landmarks' hulls, as before)
    hands_every: int = 8
    # photos: the faces this second detector finds that ``detector`` missed ("": none; "auto":
    # mtcnn behind the default dlib-hog, none behind a detector the user chose). HOG, a frontal
    # detector, misses faces MTCNN finds (a man in sunglasses in multi_face.jpg); a photo is
    # searched once, so the second pass costs little next to a video's frames
    photo_detector: str = "auto"
    progress: bool = True
    # the detector's own settings, plugin -> setting -> value (--mtcnn-threshold ...)
    plugin_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def second_detector(self) -> str:
        """The photo path's second detector ("" for none), ``photo_detector`` resolved."""
        return second_detector_name(self.detector, self.photo_detector)

    def detector_settings(self) -> dict[str, Any]:
        """The settings given for the chosen detector (the rest keep the plugin's defaults)."""
        return dict(self.plugin_settings.get(self.detector, {}))

    def settings(self, ref_embeddings: np.ndarray) -> dict[str, object]:
        """What must stay equal for a face set to be resumed or extended."""
        d = asdict(self)
        for k in ("refs", "device", "progress", "commit_every", "plugin_settings"):
            d.pop(k)
        # only values that differ from the plugin's defaults: a face set made before plugins had
        # settings, or on the defaults, records none and so is still resumed
        plugins = recorded_settings(self.plugin_settings, [(DETECTORS, self.detector)])
        if plugins:
            d["plugin_settings"] = plugins
        d["photo_detector"] = self.second_detector()
        for key in ("hands_every", "photo_detector"):
            if not d.get(key):  # off: as face sets made before the option, which resume
                d.pop(key)
        if d.get("landmarker") == PLAIN_LANDMARKER:  # face sets made before the choice resume
            d.pop("landmarker")
        d["refs_sha1"] = hashlib.sha1(np.round(ref_embeddings, 4).tobytes()).hexdigest()[:12]
        return json.loads(json.dumps(d))


@dataclass
class ExtractSummary:
    faceset: str
    sources: int
    frames: int
    faces: int
    bridged: int
    skipped: list[str]
    seconds: float
    frames_per_second: float
    processed: int = 0  # frames and photos processed by this run (0: all were done before)
    no_face: list[str] = field(default_factory=list)  # photos this run found no face in


def check_config(cfg: ExtractConfig) -> None:
    """UsageError for options no extraction can use (before anything is read or created)."""
    for name in filter(None, (cfg.detector, cfg.second_detector())):
        if name not in DETECTORS:
            DETECTORS.get(name)  # raises the UsageError listing the choices
    if cfg.landmarker not in LANDMARKERS:
        LANDMARKERS.get(cfg.landmarker)
    recorded_settings(cfg.plugin_settings, [(DETECTORS, cfg.detector)])  # UsageError if bad
    if cfg.every < 1 or cfg.size < 32 or not 0.5 <= cfg.coverage <= 4.0:
        raise UsageError("need --every >= 1, --size >= 32 and 0.5 <= --coverage <= 4")
    if cfg.hands_every < 0:
        raise UsageError(f"hands_every must be >= 0 (0: no hand cuts), not {cfg.hands_every}")
    if cfg.embed_every < 1 or cfg.redetect_every < 1 or cfg.commit_every < 1:
        raise UsageError("need --embed-every >= 1 (and redetect/commit intervals >= 1)")
    if not 0 < cfg.threshold < 2:
        raise UsageError(f"--threshold must be within 0..2 (a 128-D distance), not {cfg.threshold}")
