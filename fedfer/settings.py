"""How a run-config key is declared once: as the field that holds it, with `setting(...)`.

A run-config key has a default, a kebab-case name (Flower's run config and pyproject.toml spell it so),
the values it accepts, a help text and, where a user sets it on the command line, a `fedfer` flag
spelled as the key. All of that is the field's declaration: `FederationConfig` (fedfer.runconfig)
reads and writes Flower's run config from the declarations of its fields (nested config dataclasses
included), `add_setting_flags` makes the flags from them, and tests/test_config.py keeps
`[tool.flwr.app.config]` equal to them. Nothing else names a key's default or range.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

_SETTING = "fedfer.setting"  # the dataclass field metadata key of a declaration


@dataclass(frozen=True)
class Accepts:
    """The values a setting accepts: a test on the typed value and the words that say which."""

    test: Callable[[Any], bool]
    text: str
    choices: tuple[str, ...] | None = None  # a closed set of values (what argparse lists in --help)


def at_least(low: float) -> Accepts:
    """A value `>= low` ("{a}" becomes "an integer" or "a number", after the setting's type)."""
    return Accepts(lambda x: x >= low, f"{{a}} >= {low:g}")


def above(low: float) -> Accepts:
    return Accepts(lambda x: x > low, f"{{a}} > {low:g}")


def one_of(choices: tuple[str, ...]) -> Accepts:
    return Accepts(lambda x: x in choices, f"one of {choices}", choices)


@dataclass(frozen=True)
class Setting:
    """One run-config key's declaration (its default is the field's default)."""

    key: str  # kebab-case, as Flower's run config and pyproject.toml spell it
    help: str
    accepts: Accepts | None = None  # None: any value of the default's type
    flag: bool = False  # a `fedfer` flag, spelled `--<key>` (`--no-<key>` for a setting on by default)
    aliases: tuple[str, ...] = ()  # shorter flags for the same setting (`-P`, `--rounds`)
    group: str = ""  # the flag's argparse group title ("": the verb's main options)

    @property
    def dest(self) -> str:
        """The argparse attribute of the flag."""
        return self.key.replace("-", "_")


def setting(default: Any, key: str, help: str, **declaration: Any) -> Any:
    """A dataclass field holding the run-config key `key` (see `Setting` for the other arguments)."""
    return field(default=default, metadata={_SETTING: Setting(key, help, **declaration)})


@dataclass(frozen=True)
class Declared:
    """A declared setting with where it sits: `path` of attribute names from the root config."""

    path: tuple[str, ...]
    default: Any
    setting: Setting

    @property
    def kind(self) -> type:
        return type(self.default)

    def accepts_text(self) -> str:
        if self.setting.accepts is not None:
            return self.setting.accepts.text.replace("{a}", "an integer" if self.kind is int else "a number")
        return {bool: "true or false", str: "a string"}.get(self.kind, self.kind.__name__)


def declared(config: type | object, path: tuple[str, ...] = ()) -> Iterator[Declared]:
    """Every setting of a config dataclass, nested config dataclasses included, in field order."""
    for f in fields(config):
        if _SETTING in f.metadata:
            yield Declared((*path, f.name), f.default, f.metadata[_SETTING])
        elif is_dataclass(f.default):
            yield from declared(type(f.default), (*path, f.name))


def key_of(config: type | object, *path: str) -> str:
    """The run-config key of the setting at `path` (attribute names) in `config`: messages name keys by it."""
    return next(d.setting.key for d in declared(config) if d.path == path)


def values_of(config: object) -> dict[str, Any]:
    """The run config (kebab-case keys) of a config object."""
    out = {}
    for d in declared(config):
        value = config
        for name in d.path:
            value = getattr(value, name)
        out[d.setting.key] = value
    return out


def wrong_values(config: type | object, values: Mapping[str, Any]) -> list[str]:
    """Each of `values` whose type or range its declaration refuses, with what the key accepts."""
    wrong = []
    for d in declared(config):
        if d.setting.key not in values:
            continue
        value = values[d.setting.key]
        typed = isinstance(value, d.kind) or (d.kind is float and isinstance(value, int))
        typed = typed and (d.kind is bool or not isinstance(value, bool))  # True is an int to Python, not here
        if not typed or (d.setting.accepts is not None and not d.setting.accepts.test(value)):
            wrong.append(f"{d.setting.key} = {value!r} (expected {d.accepts_text()})")
    return wrong


def check_values(config: type | object, values: Mapping[str, Any]) -> None:
    """Raise naming every mistyped or out-of-range value and what its key accepts."""
    wrong = wrong_values(config, values)
    if wrong:
        raise ValueError(
            f"out-of-range run-config values: {'; '.join(wrong)}: fix them in the --run-config file (or the flags)"
        )


def with_values(config: Any, values: Mapping[str, Any]) -> Any:
    """`config` with the settings of `values` (kebab-case keys, checked) replaced; unknown keys are an error."""
    known = {d.setting.key: d for d in declared(config)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown run-config keys {sorted(unknown)}; known keys: {sorted(known)}")
    check_values(config, values)
    changes: dict[str, Any] = {}  # top-level field → new value
    for key, value in values.items():
        d = known[key]
        changes[d.path[0]] = _replaced(changes.get(d.path[0], getattr(config, d.path[0])), d.path[1:], d.kind(value))
    return replace(config, **changes)


def _replaced(holder: Any, path: tuple[str, ...], value: Any) -> Any:
    """`value` put at `path` inside `holder` (frozen dataclasses are rebuilt, not changed)."""
    if not path:
        return value
    return replace(holder, **{path[0]: _replaced(getattr(holder, path[0]), path[1:], value)})


def add_setting_flags(parser: argparse.ArgumentParser, config: type, groups: tuple[str, ...] = ("",)) -> None:
    """The `fedfer` flags of `config`'s settings whose group is in `groups`, each spelled as its key.

    A flag left out stays None in the parsed arguments, so `given_values` tells it from a default."""
    titled: dict[str, Any] = {"": parser}
    for d in declared(config):
        s = d.setting
        if not s.flag or s.group not in groups:
            continue
        if s.group not in titled:
            titled[s.group] = parser.add_argument_group(s.group)
        target = titled[s.group]
        if d.kind is bool:  # the flag says the opposite of the default
            spelled, switch = (f"--no-{s.key}", "off") if d.default else (f"--{s.key}", "on")
            help_text = f"turn {s.key} {switch}; on, {s.help}"
            target.add_argument(
                spelled, *s.aliases, dest=s.dest, action="store_const", const=not d.default, help=help_text
            )
            continue
        target.add_argument(
            f"--{s.key}",
            *s.aliases,
            dest=s.dest,
            type=d.kind,
            choices=s.accepts.choices if s.accepts else None,
            help=f"{s.help} (default: {d.default if d.default != '' else 'none'})",
        )


def given_values(config: type, args: argparse.Namespace) -> dict[str, Any]:
    """The run-config values the flags of `add_setting_flags` were given (kebab-case keys)."""
    given = {}
    for d in declared(config):
        value = getattr(args, d.setting.dest, None) if d.setting.flag else None
        if value is not None:
            given[d.setting.key] = value
    return given
