"""Colour matchers: make the generated face take on the lighting and skin tone of the frame.

A matcher is a pure function ``match(face, target, mask) -> face`` on the model's square crop:

* ``face``: the generated face, RGB uint8 (S, S, 3);
* ``target``: the original face cut from the frame with the same matrix, RGB uint8 (S, S, 3);
* ``mask``: bool (S, S), the pixels that are face in both (statistics are taken only there, so
  background, hair and the crop's corners do not pull the colours).

It returns the recoloured face for the whole crop, so the blender sees one consistent image.
Working on the small crop rather than the frame keeps the cost independent of the video size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from facetwin.registry import Registry, import_plugins

ColorMatcher = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

COLOR_MATCHERS: Registry[ColorMatcher] = Registry("colour matcher")

#: Fewer face pixels than this give statistics too noisy to trust: the face is left as it is.
MIN_PIXELS = 32


def enough_pixels(mask: np.ndarray) -> bool:
    """True when ``mask`` holds enough pixels for colour statistics."""
    return int(np.count_nonzero(mask)) >= MIN_PIXELS


# Every module beside this one is a plugin that registers itself: adding one is adding a file.
import_plugins(__name__)

__all__ = ["COLOR_MATCHERS", "MIN_PIXELS", "ColorMatcher", "enough_pixels"]
