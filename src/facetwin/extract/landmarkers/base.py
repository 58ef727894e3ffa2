"""The landmarker contract: an RGB image and a detector box in, 68 points (and maybe a pose) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

Pose = tuple[float, float, float]
POSE_DECIMALS = 3  # the face set stores yaw, pitch and roll rounded to this


def stored_pose(pose: Pose) -> Pose:
    """``pose`` as the face set keeps it: what extract stores and what a landmarker that
    replays stored faces (``dlib-mesh-pose-fast``) must hold to match it exactly."""
    return (
        round(float(pose[0]), POSE_DECIMALS),
        round(float(pose[1]), POSE_DECIMALS),
        round(float(pose[2]), POSE_DECIMALS),
    )


@dataclass(frozen=True)
class LandmarkFit:
    """One face's landmarks.

    points: (68, 2) float32 image pixels, iBUG 300-W layout (what alignment and masks expect).
    pose: (yaw, pitch, roll) in degrees relative to the viewing ray when the model measures it
        itself (a 3-D mesh); None means "compute it from ``points``" (facetwin.face.pose).
    """

    points: np.ndarray
    pose: Pose | None = None


@dataclass(frozen=True)
class FaceAt:
    """Where a video face is: its source, its track and its processed frame number (frame //
    ``every``). Extract tells a landmarker this so that one which follows faces over frames
    (``dlib-mesh-pose-fast``) keys its state by what the face set stores, and can rebuild it
    at a resume; a photo has none."""

    source: int
    track: int
    step: int


@dataclass(frozen=True)
class StoredFace:
    """What a face set holds of one stored face of a track, for a landmarker's ``resume``: its
    processed frame number, its 68 points (float32, as stored) and its pose (as stored)."""

    step: int
    points: np.ndarray
    pose: Pose


class Landmarker(Protocol):
    """What every landmarker plugin provides.

    A landmarker whose answer depends on the faces it saw before (a per-track state) also has
    ``resume(source, track, faces: list[StoredFace])``: extract calls it at a resume with each
    live track's stored faces, so that the state - and every pose stored after the resume - is
    what an uninterrupted run had (``extract/tracks.py: resume_landmarker``)."""

    name: str

    def fit(
        self, image: np.ndarray, box: tuple[float, float, float, float], at: FaceAt | None = None
    ) -> LandmarkFit:
        """Landmarks of the face in ``box`` (dlib's box convention) of an RGB uint8 image;
        ``at``: where it is in a video (None: a photo, or a caller that follows nothing)."""
        ...
