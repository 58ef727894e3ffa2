"""A tiny plugin registry.

Each stage (detectors, architectures, blenders, colour matchers) owns one ``Registry``. A plugin
module registers itself with a decorator, and the stage's package imports its plugin modules, so
adding a plugin is adding one file (plus its import line in the package ``__init__``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from facetwin.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> factory mapping with a helpful error for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UsageError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
