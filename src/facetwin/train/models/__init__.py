"""Architecture plugins. Each module registers one :class:`SwapAutoencoder` subclass.

The registry maps a name to the class; its metadata (input and output size, default coverage,
summary) are class attributes, so ``facetwin train --arch`` can list and check architectures
without building a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from facetwin.registry import Registry, import_plugins
from facetwin.train.models.base import AutoencoderSpec, SwapAutoencoder, forward_flops, swap

ARCHITECTURES: Registry[type[SwapAutoencoder]] = Registry("architecture")


@dataclass(frozen=True)
class ArchInfo:
    """What the trainer and the convert stage need to know about an architecture."""

    name: str
    input_size: int
    output_size: int
    default_coverage: float
    summary: str


def arch_info(name: str) -> ArchInfo:
    """Metadata of architecture ``name`` (UsageError listing the choices if unknown)."""
    cls = ARCHITECTURES.get(name)
    return ArchInfo(
        name=name,
        input_size=cls.input_size(),
        output_size=cls.output_size(),
        default_coverage=cls.default_coverage,
        summary=cls.summary,
    )


def build_model(name: str) -> SwapAutoencoder:
    """A freshly initialised model of architecture ``name`` (seed torch first for repeatability)."""
    return ARCHITECTURES.get(name)()


# Every module beside this one (but base) is an architecture that registers itself: adding one
# is adding a file.
import_plugins(__name__)

__all__ = [
    "ARCHITECTURES",
    "ArchInfo",
    "AutoencoderSpec",
    "SwapAutoencoder",
    "arch_info",
    "build_model",
    "forward_flops",
    "swap",
]
