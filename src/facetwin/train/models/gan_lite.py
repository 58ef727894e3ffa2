"""``gan-lite``: the ``gan`` design (RGBA decoders, adversarial + identity training) at ``lite``'s
quarter widths, for CPUs: the same terms and the same step, 7.3 M parameters instead of 82 M,
so a CPU run gets thousands of iterations instead of hundreds in the same minutes (7,244,680
parameters with both decoders).
"""

from __future__ import annotations

from facetwin.train.models import ARCHITECTURES
from facetwin.train.models.gan import GanSwap
from facetwin.train.models.lite import Lite


@ARCHITECTURES.register("gan-lite")
class GanLite(GanSwap):
    name = "gan-lite"
    summary = "gan at 1/4 width, 64 px, RGB + alpha mask, 7.24 M parameters (CPU)"
    default_coverage = 1.0
    spec = Lite.spec
