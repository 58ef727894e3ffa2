"""Landmarker plugins: from a detected face to its 68 points (iBUG 300-W layout), and where a
model gives one, its head pose. Each module registers one factory in ``LANDMARKERS``.

A factory is called as ``factory(device=...)`` and returns an object following
:class:`facetwin.extract.landmarkers.base.Landmarker`. Every stage that stores or compares
landmarks (alignment, masks, the mean face) expects the 68-point layout, so a landmarker with
another layout maps its points onto it.
"""

from __future__ import annotations

from collections.abc import Callable

from facetwin.extract.landmarkers.base import Landmarker, LandmarkFit
from facetwin.registry import Registry, import_plugins

LANDMARKERS: Registry[Callable[..., Landmarker]] = Registry("landmarker")

#: dlib's 68-point predictor: the lowest error on the annotated faces (docs/landmarks.md) and
#: ~1 ms a face, so extract keeps its 60 frames/s; ``dlib-mesh-pose`` adds a better head pose,
#: ``dlib-mesh-pose-fast`` the same at about dlib's cost on video - not the default because its
#: per-face state lives in the process: a video resumed after an interruption would store other
#: poses after the resume point than an uninterrupted run (docs/landmarks.md).
DEFAULT_LANDMARKER = "dlib"


def create_landmarker(name: str = DEFAULT_LANDMARKER, device: str = "cpu") -> Landmarker:
    """Build the landmarker registered under ``name`` (UsageError listing the choices if none)."""
    return LANDMARKERS.get(name)(device=device)


# Every module beside this one is a plugin that registers itself: adding one is adding a file.
import_plugins(__name__)

__all__ = ["DEFAULT_LANDMARKER", "LANDMARKERS", "LandmarkFit", "Landmarker", "create_landmarker"]
