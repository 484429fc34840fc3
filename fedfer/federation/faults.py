"""Injected client faults, for the tests and studies that show what the server survives.

The run-config key `faults` lists "kind@partition" items, e.g. "nan@1,hang@2". A Flower mod on the
ClientApp's train function (`fault_mod`) alters the named subjects' replies after the real
personalization ran, the way a buggy or hostile device would; `labelflip` instead trains on wrong
pseudo labels (`LabelFlippingClient`). An empty `faults` (the default) changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message

from fedfer.federation.client import SubjectClient
from fedfer.federation.protocol import ARRAYS, PARTITION_ID
from fedfer.runconfig import FederationConfig

# What each kind of fault does to a reply's v() arrays (name → numpy array); None: not a reply change.
REPLY_FAULTS: dict[str, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None] = {
    "raise": None,  # the ClientApp raises: Flower returns an error reply
    "hang": None,  # the ClientApp replies after twice the round's timeout: a straggler
    "shape": lambda s: {k: (a[..., :-1] if i == 0 else a) for i, (k, a) in enumerate(s.items())},
    "dtype": lambda s: {k: a.astype(np.float64) for k, a in s.items()},
    "nan": lambda s: {k: np.full_like(a, np.nan) for k, a in s.items()},
    "scale100": lambda s: {k: a * 100 for k, a in s.items()},
    "signflip": lambda s: {k: -a for k, a in s.items()},
    "labelflip": None,  # trains on pseudo labels shifted by one class (LabelFlippingClient)
}


def parse_faults(spec: str) -> dict[int, str]:
    """Partition → fault kind from the run-config value `faults` ("kind@partition,…")."""
    faults = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kind, _, partition = item.partition("@")
        if kind not in REPLY_FAULTS or not partition.isdigit():
            raise ValueError(
                f"bad run-config value faults = {spec!r} (item {item!r}): write kind@partition with kind one of "
                f"{', '.join(REPLY_FAULTS)}, e.g. 'nan@1,hang@2'"
            )
        faults[int(partition)] = kind
    return faults


def fault_of(context: Context) -> str | None:
    """The fault this node's subject is told to have in this run, if any."""
    config = FederationConfig.from_run_config(context.run_config)
    return parse_faults(config.faults).get(int(context.node_config.get(PARTITION_ID, 0)))


def fault_mod(msg: Message, context: Context, call_next: Callable[[Message, Context], Message]) -> Message:
    """Flower client mod: run the train function, then fault its reply as the run config says."""
    kind = fault_of(context)
    if kind == "raise":
        raise RuntimeError("injected fault: the client raises")
    reply = call_next(msg, context)
    if kind == "hang":
        time.sleep(2 * FederationConfig.from_run_config(context.run_config).robust.round_timeout)
    change = REPLY_FAULTS.get(kind or "")
    if change is not None and not reply.has_error():
        arrays = {k: a.numpy() for k, a in reply.content[ARRAYS].items()}
        reply.content[ARRAYS] = ArrayRecord({k: Array(np.ascontiguousarray(a)) for k, a in change(arrays).items()})
    return reply


class LabelFlippingClient(SubjectClient):
    """A subject whose pseudo labels are all wrong: each video's teacher probabilities are shifted by
    one class, so it trains v() on label (k + 1) mod K where the teacher said k."""

    def teacher_probabilities(self) -> np.ndarray:
        return np.roll(super().teacher_probabilities(), 1, axis=1)


def client_type(faults: str, partition: int) -> type[SubjectClient]:
    """The client class of subject `partition`: label flipping when the run says so, else the honest one."""
    return LabelFlippingClient if parse_faults(faults).get(partition) == "labelflip" else SubjectClient
