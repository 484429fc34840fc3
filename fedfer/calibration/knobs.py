"""The world's calibratable knobs: named paths into a `WorldPreset`, with bounds and a reason.

A knob's path walks the preset's dataclasses, dicts and tuples (`crema_d.population.p_resting_look`,
`raters.confusions.DIS.SAD`, `affectnet.intensity.0`), so a candidate world is the base preset with
some values replaced (`apply`), and the values found are written back as the presets' defaults
once the world is frozen. What each knob is fitted to is in `fedfer.calibration.targets`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fedfer.synth.presets import WorldPreset


@dataclass(frozen=True)
class Knob:
    """One calibratable value: where it is, the range searched, and what it stands for."""

    path: str
    low: float
    high: float
    means: str

    def clip(self, value: float) -> float:
        return min(self.high, max(self.low, float(value)))


def get(obj: Any, path: str) -> Any:
    """The value at a dotted path of dataclass fields, dict keys and tuple indices."""
    for part in path.split("."):
        if isinstance(obj, Mapping) and part not in obj:
            return 0.0  # an absent entry (a confusion never set) weighs 0
        if dataclasses.is_dataclass(obj):
            obj = getattr(obj, part)
        elif isinstance(obj, Mapping):
            obj = obj[part]
        elif isinstance(obj, tuple):
            obj = obj[int(part)]
        else:
            raise KeyError(f"{path}: cannot follow {part!r} into a {type(obj).__name__}")
    return obj


def _with(obj: Any, parts: list[str], value: Any) -> Any:
    """A copy of `obj` with the value at `parts` replaced (frozen dataclasses are rebuilt)."""
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    if dataclasses.is_dataclass(obj):
        return dataclasses.replace(obj, **{head: _with(getattr(obj, head), rest, value)})  # type: ignore[type-var]
    if isinstance(obj, Mapping):
        return {**obj, head: _with(obj.get(head, {} if rest else 0.0), rest, value)}
    if isinstance(obj, tuple):
        i = int(head)
        return (*obj[:i], _with(obj[i], rest, value), *obj[i + 1 :])
    raise KeyError(f"cannot set {head!r} in a {type(obj).__name__}")


def apply(preset: WorldPreset, values: Mapping[str, float]) -> WorldPreset:
    """`preset` with each knob path in `values` set to its value."""
    for path, value in values.items():
        preset = _with(preset, path.split("."), value)
    return preset


def read(preset: WorldPreset, knobs: list[Knob]) -> dict[str, float]:
    """The current value of each knob in `preset`."""
    return {k.path: float(get(preset, k.path)) for k in knobs}
