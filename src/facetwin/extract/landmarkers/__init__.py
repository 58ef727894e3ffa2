"""Landmarker plugins: from a detected face to its 68 points (iBUG 300-W layout), and where a
model gives one, its head pose. Each module registers one factory in ``LANDMARKERS``.

A factory is called as ``factory(device=...)`` and returns an object following
:class:`facetwin.extract.landmarkers.base.Landmarker`. Every stage that stores or compares
landmarks (alignment, masks, the mean face) expects the 68-point layout, so a landmarker with
another layout maps its points onto it.
"""

from __future__ import annotations

from collections.abc import Callable

from facetwin.extract.landmarkers.base import (
    FaceAt,
    Landmarker,
    LandmarkFit,
    StoredFace,
    stored_pose,
)
from facetwin.registry import Registry, import_plugins

LANDMARKERS: Registry[Callable[..., Landmarker]] = Registry("landmarker")

#: dlib's 68 points (the lowest error on the annotated faces) with MediaPipe's mesh pose (within
#: 5 degrees on every known-yaw still, where dlib's rigid pose is 7.3 off at 45), the mesh run
#: only every few frames of a video track: about dlib's cost, and resumable (docs/landmarks.md).
DEFAULT_LANDMARKER = "dlib-mesh-pose-fast"
#: What a face set made before the choice was extracted with (its settings name no landmarker).
PLAIN_LANDMARKER = "dlib"


def create_landmarker(name: str = DEFAULT_LANDMARKER, device: str = "cpu") -> Landmarker:
    """Build the landmarker registered under ``name`` (UsageError listing the choices if none)."""
    return LANDMARKERS.get(name)(device=device)


# Every module beside this one is a plugin that registers itself: adding one is adding a file.
import_plugins(__name__)

__all__ = [
    "DEFAULT_LANDMARKER",
    "PLAIN_LANDMARKER",
    "LANDMARKERS",
    "FaceAt",
    "LandmarkFit",
    "Landmarker",
    "StoredFace",
    "create_landmarker",
    "stored_pose",
]
