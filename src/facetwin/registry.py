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

A plugin may also declare its own settings (:class:`Setting`: a name, a type, a default, a help,
choices or a range), as FaceFusion's processors register their own arguments and faceswap's
plugins each have a defaults file. The command line adds one ``--<plugin>-<setting>`` option per
setting; the stage's config carries the values (one dict, plugin -> setting -> value), checks
them with :meth:`Registry.resolve` and hands them to the plugin as keyword arguments
(:meth:`Registry.bind`), and the stage records the ones that differ from the defaults
(:func:`recorded_settings`), so a resume or a rerun sees the same plugin as the first run.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar, cast

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


#: What a plugin setting may hold: values JSON keeps exactly, so the settings a stage records
#: (a face set's, a conversion's job key) compare equal when the same run comes again.
SettingValue = bool | int | float | str
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_KINDS = {bool: "yes or no", int: "a whole number", float: "a number", str: "text"}


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Setting:
    """One setting a plugin declares: what a user may change of what was a constant in its file.

    name: a Python identifier, the keyword the plugin's factory (or function) takes; the command
        line writes it ``--<plugin>-<name>``, ``_`` as ``-``.
    type: bool, int, float or str.
    default: the value that keeps the plugin's behaviour as it is without the setting.
    help: one line for ``--help`` (the default and the range are added to it).
    choices: the allowed values of a str setting (empty: any).
    low, high: inclusive bounds of an int or float setting (None: unbounded on that side).
    """

    name: str
    type: type
    default: SettingValue
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        # a bad declaration fails when the plugin's file is imported, not in a user's run
        if not self.name.isidentifier():
            raise ValueError(f"setting name {self.name!r} is not an identifier")
        if self.type not in _KINDS:
            raise ValueError(f"setting {self.name!r}: type must be bool, int, float or str")
        self.check(self.default)

    def _is_type(self, value: object) -> bool:
        if self.type is bool or isinstance(value, bool):
            return self.type is bool and isinstance(value, bool)
        if self.type is float:
            return isinstance(value, int | float) and math.isfinite(value)
        return isinstance(value, self.type)

    def range_text(self) -> str:
        """``"0..1"``, ``">= 12"``, ``"a, b"`` or ``""``: what the setting accepts."""
        if self.choices:
            return ", ".join(self.choices)
        if self.low is not None and self.high is not None:
            return f"{_number(self.low)}..{_number(self.high)}"
        if self.low is not None:
            return f">= {_number(self.low)}"
        return "" if self.high is None else f"<= {_number(self.high)}"

    def _check_bounds(self, n: float) -> None:
        """ValueError when the number ``n`` lies outside ``low``..``high``."""
        if self.low is not None and self.high is not None:
            if not self.low <= n <= self.high:
                raise ValueError(f"must be within {self.range_text()}, not {n}")
        elif self.low is not None and n < self.low:
            raise ValueError(f"must be at least {_number(self.low)}, not {n}")
        elif self.high is not None and n > self.high:
            raise ValueError(f"must be at most {_number(self.high)}, not {n}")

    def check(self, value: object) -> SettingValue:
        """``value`` as this setting holds it (an int given for a float becomes a float);
        ValueError saying what it must be."""
        if not self._is_type(value):
            raise ValueError(f"must be {_KINDS[self.type]}, not {value!r}")
        v = cast(SettingValue, value)
        if self.type is float:
            v = float(v)
        if self.choices and v not in self.choices:
            raise ValueError(f"must be one of {self.range_text()}, not {v!r}")
        if self.type in (int, float):
            self._check_bounds(cast(float, v))  # an int stays an int in the message
        return v

    def parse(self, text: str) -> SettingValue:
        """A command-line word as this setting's value; ValueError saying what it must be."""
        if self.type is bool:
            word = text.strip().lower()
            if word not in _TRUE + _FALSE:
                raise ValueError(f"must be yes or no, not {text!r}")
            return word in _TRUE
        if self.type is str:
            return self.check(text)
        try:
            value = self.type(text)
        except ValueError:
            raise ValueError(f"must be {_KINDS[self.type]}, not {text!r}") from None
        return self.check(value)

    def describe(self) -> str:
        """The help line with the default and a number's range: ``"cut-off (0.9; 0..1)"`` (a
        choice's values are in the option's metavar)."""
        default = self.default
        if isinstance(default, bool):
            shown = "yes" if default else "no"
        else:
            shown = _number(default) if isinstance(default, float) else str(default)
        bounds = "" if self.choices else self.range_text()
        return f"{self.help} ({shown}{'; ' + bounds if bounds else ''})"


def option_name(plugin: str, setting: str) -> str:
    """The command-line option of ``setting`` of ``plugin``: ``--mtcnn-threshold``."""
    return f"--{plugin}-{setting.replace('_', '-')}"


def _check_declaration(kind: str, name: str, obj: object, settings: Sequence[Setting]) -> None:
    """ValueError when ``obj`` cannot take its declared settings as keywords: caught when the
    plugin's file is imported rather than when a user first sets one."""
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ValueError(f"{kind} {name!r} declares a setting twice")
    if not settings or not callable(obj):
        return
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    missing = [n for n in names if n not in params or params[n].kind not in keyword]
    if missing:
        raise ValueError(
            f"{kind} {name!r} declares setting {missing[0]!r} but takes no such keyword"
        )


class Registry(Generic[T]):
    """Name -> factory mapping, with each plugin's help, its declared settings and a helpful
    error for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}
        self._settings: dict[str, tuple[Setting, ...]] = {}

    def register(
        self,
        name: str,
        help: str | None = None,  # noqa: A002
        settings: Sequence[Setting] = (),
    ) -> Callable[[T], T]:
        """Register a plugin under ``name``; ``settings`` are the keywords its factory takes
        that a user may set (``--<name>-<setting>``)."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            _check_declaration(self.kind, name, obj, settings)
            self._items[name] = obj
            self._help[name] = help if help is not None else _first_line(obj)
            self._settings[name] = tuple(settings)
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

    def settings(self, name: str) -> tuple[Setting, ...]:
        """The settings plugin ``name`` declares (UsageError for an unknown plugin)."""
        self.get(name)
        return self._settings[name]

    def resolve(self, name: str, given: Mapping[str, object] | None = None) -> dict[str, Any]:
        """Every setting of plugin ``name``: the ``given`` values checked, the others their
        defaults. A one-line UsageError naming the option for a setting the plugin does not
        declare or a value outside its type, choices or range."""
        declared = {s.name: s for s in self.settings(name)}
        unknown = sorted(set(given or {}) - set(declared))
        if unknown:
            known = ", ".join(option_name(name, n) for n in declared) or "none"
            raise UsageError(
                f"{self.kind} {name!r} has no setting {unknown[0]!r} (its settings: {known})"
            )
        values: dict[str, Any] = {}
        for s in declared.values():
            try:
                values[s.name] = s.check((given or {}).get(s.name, s.default))
            except ValueError as e:
                raise UsageError(f"{option_name(name, s.name)} {e}") from None
        return values

    def bind(self, name: str, given: Mapping[str, object] | None = None) -> T:
        """Plugin ``name`` with its settings applied as keywords (a ``functools.partial``), so
        its callers call it as they call any plugin of the stage. A plugin that declares no
        setting is returned itself: nothing about it changes."""
        obj = self.get(name)
        values = self.resolve(name, given)
        return cast(T, partial(cast(Callable[..., Any], obj), **values)) if values else obj

    def describe(self, default: str | None = None) -> str:
        """``"a: what a does (default); b: ..."`` - the registered plugins for a ``--help``."""
        parts = []
        for name in self.names():
            text = f"{name}: {self.help(name)}" if self.help(name) else name
            parts.append(text + (" (default)" if name == default else ""))
        return "; ".join(parts)

    def __contains__(self, name: object) -> bool:
        return name in self._items


def recorded_settings(
    given: Mapping[str, Mapping[str, object]], used: Sequence[tuple[Registry[Any], str]]
) -> dict[str, dict[str, Any]]:
    """What a stage records of its plugins' settings: for each plugin it uses (``(registry,
    name)`` pairs), the checked values that differ from the defaults, plugin -> setting -> value.

    Only changed values, so that a run on the defaults records nothing: the records of runs
    made before plugins had settings still match, and setting a default explicitly is the same
    run as not setting it. One-line UsageError for a bad value, or for settings of a plugin the
    run does not use (they would silently do nothing).
    """
    plugins = {name: registry for registry, name in used}
    idle = sorted(p for p, values in given.items() if values and p not in plugins)
    if idle:
        first = option_name(idle[0], sorted(given[idle[0]])[0])
        raise UsageError(f"{first} is a setting of {idle[0]}, which this run does not use")
    out: dict[str, dict[str, Any]] = {}
    for name, registry in sorted(plugins.items()):
        values, defaults = registry.resolve(name, given.get(name)), registry.resolve(name)
        changed = {k: v for k, v in values.items() if v != defaults[k]}
        if changed:
            out[name] = changed
    return out


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
