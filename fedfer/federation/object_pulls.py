"""Short retries when a Flower process pulls a message whose arrays are still on their way.

Why: Flower 1.42 hands a message to its receiver as soon as the message itself is registered,
before its arrays (one stored object per tensor) have all arrived. The SuperLink gives the ServerApp
a client's reply while that client's SuperNode is still pushing it, and a SuperNode gives its
ClientApp a task while it is still pulling the instruction from the SuperLink. The receiver retries
each missing object with a backoff of 1 s doubling to 10 s (`flwr.supercore.constant`'s
`PULL_INITIAL_BACKOFF` and `PULL_BACKOFF_CAP`, which no option or variable sets), so it sees a
complete message up to several seconds after it was complete: in a 3-client deployment, seconds of
every exchange. Both pulls are cheap requests (the ServerApp's to its SuperLink, the ClientApp's to
its own SuperNode on loopback), so retrying every 50–200 ms costs nothing worth counting.

This binds shorter backoffs into Flower's pull functions as the receiving modules imported them
(internals pinned to the Flower version in pyproject.toml).
"""

from __future__ import annotations

import functools
from types import ModuleType

BACKOFF_S = (0.05, 0.2)  # first retry and cap, seconds


def shorten_pull_backoff(module: ModuleType, function: str) -> None:
    """Make `module.function` (a Flower pull taking `initial_backoff` and `backoff_cap`) retry after
    `BACKOFF_S`; calling it again changes nothing."""
    pull = getattr(module, function)
    if isinstance(pull, functools.partial):
        return
    first, cap = BACKOFF_S
    setattr(module, function, functools.partial(pull, initial_backoff=first, backoff_cap=cap))


def shorten_server_pulls() -> None:
    """The ServerApp's pulls of replies from the SuperLink (`HttpGrid.pull_messages`, deployments)."""
    from flwr.superlink.grid import http_grid

    shorten_pull_backoff(http_grid, "pull_objects")


def shorten_clientapp_pulls() -> None:
    """A ClientApp process's pull of its instruction from its SuperNode (`run_clientapp`)."""
    from flwr.supernode.runtime import run_clientapp

    shorten_pull_backoff(run_clientapp, "pull_and_inflate_object_from_tree")
