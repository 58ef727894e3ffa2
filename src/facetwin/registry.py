"""A tiny plugin registry, and how plugins are found.

Each stage (detectors, architectures, blenders, colour matchers, loss terms) owns one
``Registry``. A plugin module registers itself with a decorator that also gives its one-line
help; the command line builds its ``choices`` and help texts from the registry, so the CLI and
its docs never name plugins by hand.

Adding a plugin is adding one file:

* inside facetwin: a module in the stage's plugin package; the package's ``__init__`` imports
  every module beside it (:func:`import_plugins`), so no list needs editing;
* outside facetwin: a module of your own, named in the ``facetwin.plugins`` entry-point group
  of your package or in the ``FACETWIN_PLUGINS`` environment variable (comma-separated module
  names); the ``facetwin`` command imports those before it reads its arguments
  (:func:`load_external_plugins`).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable
from typing import Generic, TypeVar

from facetwin.errors import UsageError

T = TypeVar("T")

ENTRY_POINT_GROUP = "facetwin.plugins"
ENV_PLUGINS = "FACETWIN_PLUGINS"


def _first_line(obj: object) -> str:
    """A plugin's help when it gives none: its ``summary`` attribute or its docstring's first
    line."""
    summary = getattr(obj, "summary", None)
    if isinstance(summary, str) and summary:
        return summary
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else ""


class Registry(Generic[T]):
    """Name -> factory mapping, with each plugin's help and a helpful error for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str | None = None) -> Callable[[T], T]:  # noqa: A002
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            self._help[name] = help if help is not None else _first_line(obj)
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

    def help(self, name: str) -> str:
        return self._help.get(name, "")

    def describe(self, default: str | None = None) -> str:
        """``"a: what a does (default); b: ..."`` - the registered plugins for a ``--help``."""
        parts = []
        for name in self.names():
            text = f"{name}: {self.help(name)}" if self.help(name) else name
            parts.append(text + (" (default)" if name == default else ""))
        return "; ".join(parts)

    def __contains__(self, name: object) -> bool:
        return name in self._items


def import_plugins(package: str, skip: tuple[str, ...] = ("base",)) -> None:
    """Import every module of the plugin package ``package`` (they register themselves), in
    name order so that registration does not depend on the file system's order."""
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_") and info.name not in skip:
            importlib.import_module(f"{package}.{info.name}")


def external_plugin_modules() -> list[str]:
    """Module names of plugins from outside facetwin: the entry-point group, then the env var."""
    from importlib.metadata import entry_points

    names = [ep.value.partition(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)]
    names += [n.strip() for n in os.environ.get(ENV_PLUGINS, "").split(",") if n.strip()]
    return list(dict.fromkeys(names))


def load_external_plugins() -> list[str]:
    """Import the plugins named by :func:`external_plugin_modules`; UsageError (one line) when
    one cannot be imported, since a typo there would otherwise read as "unknown detector"."""
    names = external_plugin_modules()
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any failure of user code is the user's to fix
            raise UsageError(f"plugin {name!r} could not be imported: {e}") from None
    return names
