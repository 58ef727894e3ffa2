"""The convert stage: swap faces in images, folders of images and videos with a trained model.

Python API: :func:`convert` with a :class:`ConvertConfig`; blenders and colour matchers are
plugins in :data:`BLENDERS` and :data:`COLOR_MATCHERS` (one file each under ``blend/`` and
``color/``).
"""

from facetwin.convert.blend import BLENDERS
from facetwin.convert.color import COLOR_MATCHERS
from facetwin.convert.config import ConvertConfig, ConvertSummary
from facetwin.convert.pipeline import convert

__all__ = ["BLENDERS", "COLOR_MATCHERS", "ConvertConfig", "ConvertSummary", "convert"]
