"""The server's check of one client update before it may reach the average.

FedAvg and its robust variants trust what they receive: one NaN reply turns the average into NaN,
and a reply scaled ×100 drags it far away (both measured by simulations/study_poisoning.py). A reply
is accepted only when it carries exactly v()'s arrays with the global v()'s shapes and dtypes, only
finite values, and a change from the global v() whose L2 norm is within a bound measured on clean
runs. The check names what is wrong, so a refused client's reason lands in `rounds.json` and the report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UpdateCheck:
    """The verdict on one update: `reason` is None when it may be averaged; `norm` is ‖update − global‖₂
    over all arrays (None when the arrays cannot be compared)."""

    reason: str | None
    norm: float | None


def check_update(
    update: Mapping[str, np.ndarray], global_state: Mapping[str, np.ndarray], max_norm: float
) -> UpdateCheck:
    """Check `update` against the `global_state` it was trained from; `max_norm` 0 means no norm bound."""
    missing, unexpected = sorted(set(global_state) - set(update)), sorted(set(update) - set(global_state))
    if missing or unexpected:
        return UpdateCheck(f"arrays differ from v(): missing {missing[:5]}, unexpected {unexpected[:5]}", None)
    for key, reference in global_state.items():
        array = update[key]
        if array.shape != reference.shape:
            return UpdateCheck(f"array {key} has shape {list(array.shape)}, v() has {list(reference.shape)}", None)
        if array.dtype != reference.dtype:
            return UpdateCheck(f"array {key} has dtype {array.dtype}, v() has {reference.dtype}", None)
    for key, array in update.items():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        if bad:
            return UpdateCheck(f"array {key} has {bad} non-finite values (NaN or ±inf)", None)
    norm = update_norm(update, global_state)
    if max_norm > 0 and norm > max_norm:
        return UpdateCheck(
            f"update norm {norm:.3g} exceeds max-update-norm {max_norm:g} (‖v_client − v_global‖₂)", norm
        )
    return UpdateCheck(None, norm)


def update_norm(update: Mapping[str, np.ndarray], global_state: Mapping[str, np.ndarray]) -> float:
    """‖update − global‖₂ over every array, in float64 (the same keys and shapes are assumed)."""
    squares = sum(
        float(np.sum(np.square(update[k].astype(np.float64) - global_state[k].astype(np.float64))))
        for k in global_state
    )
    return float(np.sqrt(squares))


FLOWER_MESSAGE = re.compile(r"Message: (.*?)(?:'>)?\s*$", re.S)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_reason(flower_reason: str, limit: int = 300) -> str:
    """The client's own error message out of the error Flower reports for a ClientApp that raised
    (in a simulation, a Ray traceback ending in "Message: <the client's message>")."""
    text = ANSI.sub("", flower_reason)
    match = FLOWER_MESSAGE.search(text)
    return (match.group(1) if match else text).strip()[:limit]
