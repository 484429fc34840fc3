"""Every patch of, and reliance on, Flower's internals, in one place, for the pinned Flower only.

fedfer shortens waits that Flower 1.42 hard-codes, re-addresses one kind of reply and drives
Flower's ClientApp task API itself. None of these is a public API: each function here first calls
`require_pinned_flower`, so a Flower other than the one pyproject.toml pins fails at once, naming
this module, instead of patching something that has changed underneath.

- Pull backoffs (`shorten_server_pulls`, `shorten_clientapp_pulls`). Flower hands a message to its
  receiver as soon as the message itself is registered, before its arrays (one stored object per
  tensor) have all arrived: the SuperLink gives the ServerApp a client's reply while that client's
  SuperNode is still pushing it, and a SuperNode gives its ClientApp a task while it is still pulling
  the instruction. The receiver retries each missing object after 1 s doubling to 10 s
  (`flwr.supercore.constant`'s `PULL_INITIAL_BACKOFF`, `PULL_BACKOFF_CAP`; no option sets them), so
  it sees a complete message up to seconds late: in a 3-client deployment, seconds of every
  exchange. Both pulls are cheap requests, so fedfer retries after `BACKOFF_S` instead.
- SuperNode sleeps (`cap_supernode_sleeps`). A SuperNode that finds no message sleeps 3 s before
  asking again and checks for its ClientApp's reply every 0.5 s (`time.sleep` in
  `flwr.supernode.start_client_internal`): each exchange of a round began on average 1.5 s late.
  `fedfer.flower.quick_supernode` caps them.
- A silent node's reply (`readdress_reply`). When a node stops sending heartbeats, the SuperLink
  answers for it with an error reply whose sender is the SuperLink itself; fedfer gives it the node
  it is about (`fedfer.flower.progress`).
- The SuperExec's task API (`task_acquirer`, `run_clientapp_task`), which
  `fedfer.flower.forked_clientapps` uses to run each ClientApp in a forked child.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from importlib.metadata import version
from types import ModuleType
from typing import Any

PINNED_FLOWER = "1.42.0"  # the version pyproject.toml pins (tests/test_architecture.py keeps them equal)
BACKOFF_S = (0.05, 0.2)  # first retry and cap of a pull, seconds


def require_pinned_flower() -> None:
    """Raise, naming the remedy, unless the installed Flower is the one fedfer's patches were written for."""
    installed = version("flwr")
    if installed != PINNED_FLOWER:
        raise RuntimeError(
            f"fedfer patches internals of Flower {PINNED_FLOWER} (fedfer/flower/internals.py), but Flower "
            f"{installed} is installed: install flwr=={PINNED_FLOWER} as pyproject.toml pins it, or port "
            f"fedfer/flower/internals.py to Flower {installed} and move the pin"
        )


def shorten_pull_backoff(module: ModuleType, function: str) -> None:
    """Make `module.function` (a Flower pull taking `initial_backoff` and `backoff_cap`) retry after
    `BACKOFF_S`; calling it again changes nothing."""
    require_pinned_flower()
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


class _CappedSleeps:
    """The `time` module, except that `sleep` never sleeps longer than `cap` seconds."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, self.cap))


def cap_supernode_sleeps(cap: float) -> None:
    """Make the SuperNode of this process sleep at most `cap` seconds between its requests."""
    require_pinned_flower()
    from flwr.supernode import start_client_internal

    start_client_internal.time = _CappedSleeps(cap)


def readdress_reply(reply: Any, node_id: int) -> None:
    """Make `reply` (a Message the SuperLink sent for a silent node) come from `node_id`."""
    require_pinned_flower()
    reply.metadata.__dict__["_src_node_id"] = node_id


def task_acquirer(runtime_api_address: str) -> Callable[[], str | None]:
    """A function that asks the SuperNode's Runtime API at `runtime_api_address` for a ClientApp task
    and returns its token, or None when there is none (what `flower-superexec` does)."""
    require_pinned_flower()
    from flwr.proto.runtime_pb2 import AcquireTaskRequest
    from flwr.supercore.constant import TaskType
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient

    client = RuntimeHttpClient.from_server_address(
        server_address=runtime_api_address,
        insecure=True,
        root_certificates=None,
        interceptors=[RuntimeVersionHttpInterceptor(component_name="SuperExec")],
        retry_invoker=make_simple_http_retry_invoker(),
    )
    request = AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP.value])

    def acquire() -> str | None:
        response = client.AcquireTask(request)
        return response.token if response.HasField("task") and response.token else None

    return acquire


def run_clientapp_task(runtime_api_address: str, token: str, parent_pid: int) -> None:
    """Flower's ClientApp process body for the task `token`: pull the message, install the FAB, load
    the ClientApp from it, run it, push the reply."""
    require_pinned_flower()
    from flwr.supernode.runtime.run_clientapp import run_clientapp

    run_clientapp(runtime_api_address=runtime_api_address, token=token, insecure=True, parent_pid=parent_pid)
