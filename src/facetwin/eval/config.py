"""The settings of one evaluation (every one is recorded in metrics.json)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from facetwin.errors import InputError, UsageError
from facetwin.extract.detectors import DETECTORS
from facetwin.extract.landmarkers import LANDMARKERS
from facetwin.extract.landmarkers._mesh import model_path
from facetwin.face.masks import MASK_KINDS

LANDMARK_BOXES = ("original", "swap")
#: landmarkers whose pose depends on the calls before (not for eval's two interleaved streams)
STATEFUL_POSE = ("dlib-mesh-pose-fast",)

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Settings of one evaluation; every one is recorded in metrics.json."""

    detector: str = "dlib-hog"
    device: str = "auto"
    max_detect_side: int = 1280  # full-frame detection on frames shrunk to this longest side
    redetect_every: int = 8  # video: frames between full-frame detections of the original
    min_iou: float = 0.3  # a swapped face must overlap the original face's box this much
    landmark_box: str = "original"  # box the swap's landmarks start from: 'original' | 'swap'
    refine: int = 2  # times the original's box is moved along with the swapped face's landmarks
    largest_only: bool = False  # evaluate only the largest original face of each frame
    embedder: str = "torch"  # torch port of dlib's ResNet (same vectors, ~7x faster) or dlib
    embed_every: int = 1  # video: embeddings (the slow part, ~80 ms a face) every N-th frame
    embed_original: bool = True  # also embed the original faces (baseline, distance to source)
    mask: str = "components"  # face region: 'components' (landmark hull) | 'extended'
    band: float = 0.08  # border band width, as a fraction of the inter-ocular distance
    sectors: int = 16  # border split into this many angles for the colour step
    max_frames: int | None = None  # stop after this many frames (quick looks at long videos)
    start_frame: int = 0  # video: first frame compared (e.g. the first frame held out of training)
    samples: int = 6  # sample frames (original | swap) shown in report.html
    direction: str = "a2b"  # the conversion's: b2a means the original shows the model's B
    # measures run (names in eval/measures/; None = every registered one). metrics.json's
    # config lists the ones that ran; the sections of the others are null
    metrics: tuple[str, ...] | None = None
    # head pose of both faces: "landmarks" (the rigid 68-point fit, facetwin.face.pose), a
    # landmarker that measures pose itself, e.g. "dlib-mesh-pose" (within 5 degrees on the
    # known-yaw stills where the landmark fit is 7 off at 45: docs/landmarks.md), or "auto":
    # dlib-mesh-pose where its model file is installed, else the landmark fit (resolve_pose)
    pose: str = "auto"
    progress: bool = True

    def resolve_pose(self) -> str:
        """The pose estimator "auto" stands for here: MediaPipe's mesh (dlib-mesh-pose) when
        the mediapipe wheel's model file is installed, else the landmark fit."""
        if self.pose != "auto":
            return self.pose
        try:
            model_path()
        except InputError:
            log.warning("no mediapipe model file: head pose from the rigid landmark fit")
            return "landmarks"
        return "dlib-mesh-pose"

    def check(self) -> None:
        """UsageError for settings that cannot work (the CLI passes user options straight in)."""
        if self.detector not in DETECTORS:
            DETECTORS.get(self.detector)  # raises the UsageError listing the choices
        if self.landmark_box not in LANDMARK_BOXES:
            raise UsageError(
                f"landmark_box must be one of {LANDMARK_BOXES}, not {self.landmark_box!r}"
            )
        if self.mask not in MASK_KINDS:
            raise UsageError(f"mask must be one of {MASK_KINDS}, not {self.mask!r}")
        if self.redetect_every < 1 or self.embed_every < 1 or self.sectors < 1 or self.refine < 0:
            raise UsageError("need redetect_every, embed_every, sectors >= 1 and refine >= 0")
        if not 0.0 < self.min_iou < 1.0 or not 0.0 < self.band <= 0.5:
            raise UsageError("need 0 < min_iou < 1 and 0 < band <= 0.5")
        if self.max_frames is not None and self.max_frames < 1:
            raise UsageError("max_frames must be >= 1")
        if self.start_frame < 0:
            raise UsageError("start_frame must be >= 0")
        if self.pose not in ("landmarks", "auto"):
            LANDMARKERS.get(self.pose)  # raises the UsageError listing the choices
        if self.pose in STATEFUL_POSE:
            raise UsageError(
                f"--pose {self.pose} carries each face's pose from call to call, and eval runs "
                "the original and the swap through one estimator: use dlib-mesh-pose"
            )
        if self.direction not in ("a2b", "b2a"):
            raise UsageError(f"direction must be a2b or b2a, not {self.direction!r}")
