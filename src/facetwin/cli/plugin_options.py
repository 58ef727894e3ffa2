"""A plugin's own settings on the command line: one ``--<plugin>-<setting>`` option per
:class:`facetwin.registry.Setting` a plugin declares, in an argument group per plugin, all
collected in one ``plugin_settings`` dict - what the stage configs take. Built from the
registries, so a new plugin's settings need no edit here (docs/pipeline.md, "Plugins")."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from facetwin.registry import Registry, Setting, option_name


class _SettingAction(argparse.Action):
    """Store a plugin setting in ``namespace.plugin_settings[plugin][setting]``: one dict, the
    stage config's ``plugin_settings``, however many plugins add options."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        self.plugin: str = kwargs.pop("plugin")
        self.setting: Setting = kwargs.pop("setting")
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        old = getattr(namespace, self.dest, None) or {}  # a new dict: never the parser's default
        mine = {**old.get(self.plugin, {}), self.setting.name: values}
        setattr(namespace, self.dest, {**old, self.plugin: mine})


def _setting_type(setting: Setting) -> Callable[[str], object]:
    """An argparse ``type`` for ``setting``: its own parsing and checks, their message as the
    one-line usage error."""

    def parse(text: str) -> object:
        try:
            return setting.parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def _setting_metavar(setting: Setting) -> str:
    if setting.choices:
        return "{" + ",".join(setting.choices) + "}"
    return "{yes,no}" if setting.type is bool else setting.name.upper()


def plugin_options(p: argparse.ArgumentParser, registry: Registry[Any]) -> None:
    """One ``--<plugin>-<setting>`` option per setting the plugins of ``registry`` declare, a
    group per plugin, all stored in ``plugin_settings`` (None when none is given): a plugin's
    settings reach ``--help`` and its factory with no edit here."""
    p.set_defaults(plugin_settings=None)
    for name in registry.names():
        settings = registry.settings(name)
        if not settings:
            continue
        group = p.add_argument_group(f"{registry.kind} {name}")
        for s in settings:
            group.add_argument(
                option_name(name, s.name),
                dest="plugin_settings",
                action=_SettingAction,
                plugin=name,
                setting=s,
                type=_setting_type(s),
                default=None,
                metavar=_setting_metavar(s),
                help=s.describe(),
            )
