"""Face detector plugins. Each module registers one detector factory in ``DETECTORS``.

A factory is called as ``factory(device=..., **settings)`` - the settings it declared when it
registered (:class:`facetwin.registry.Setting`), defaults filled in - and returns an object
following :class:`facetwin.extract.detectors.base.Detector`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from facetwin.extract.detectors.base import Detection, Detector
from facetwin.registry import Registry, import_plugins

DETECTORS: Registry[Callable[..., Detector]] = Registry("detector")


def create_detector(
    name: str, device: str = "cpu", settings: Mapping[str, object] | None = None
) -> Detector:
    """Build the detector registered under ``name`` with its ``settings`` (the ones not given
    keep their defaults; UsageError for a setting it does not declare or a bad value)."""
    return DETECTORS.bind(name, settings)(device=device)


# Every module beside this one is a plugin that registers itself: adding one is adding a file.
import_plugins(__name__)

__all__ = ["DETECTORS", "Detection", "Detector", "create_detector"]
