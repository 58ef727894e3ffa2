"""Face detector plugins. Each module registers one detector factory in ``DETECTORS``.

A factory is called as ``factory(device=...)`` and returns an object following
:class:`facetwin.extract.detectors.base.Detector`.
"""

from __future__ import annotations

from collections.abc import Callable

from facetwin.extract.detectors.base import Detection, Detector
from facetwin.registry import Registry, import_plugins

DETECTORS: Registry[Callable[..., Detector]] = Registry("detector")


def create_detector(name: str, device: str = "cpu") -> Detector:
    """Build the detector registered under ``name``."""
    return DETECTORS.get(name)(device=device)


# Every module beside this one is a plugin that registers itself: adding one is adding a file.
import_plugins(__name__)

__all__ = ["DETECTORS", "Detection", "Detector", "create_detector"]
