"""A SuperNode's ClientApps forked from one warm process, instead of a fresh Python per message.

Why: in a deployment, Flower 1.42's SuperNode (isolation "subprocess") starts `flower-superexec`,
which polls the SuperNode's Runtime API once a second and starts a new `flwr-clientapp` process for
every message. Each of those imports torch, scikit-learn and Flower again before it reads its first
feature: seconds of start-up per message, two messages (train, evaluate) per client per round, all
on the node's own cores. Flower 1.42 has no long-lived ClientApp process (its warm executor pools
are for Kubernetes).

What this does: run the SuperNode with `--isolation process` and, beside it, this process. It
imports the heavy libraries once and takes one tiny optimizer step (torch's first `Adam.step()`
imports its compiler stack: 3 s of CPU on an idle core, 8 s on a busy one, paid by every child
otherwise), then does what `flower-superexec` does (AcquireTask on the Runtime API, here every
`poll_seconds`) but launches each task by `os.fork()`: the child runs Flower's own `run_clientapp`
with the task's token (pull the message, install the FAB, load the ClientApp from it, run it, push
the reply) and exits, inheriting the warm libraries. fedfer's own modules (beyond this launcher's
two) are *not* pre-imported, so the child runs the app code the FAB shipped. The Runtime API is the
SuperNode's loopback endpoint, as in Flower's default mode. Polling every 0.2 s delays nothing that
matters (a task is handed out while the SuperNode still pulls its arrays, which takes longer) and
costs a SuperNode a fifth of the requests of polling every 50 ms.

The SuperNode hands out a task before it has pulled the message's arrays from the SuperLink; the
child pulls them with a short retry backoff, not Flower's 1 s doubling to 10 s, which got them up
to 4 s after the SuperNode had them. The task API and the backoff are Flower internals, used through
`fedfer.flower.internals` (pinned Flower only).

    python -m fedfer.flower.forked_clientapps --runtime-api-address 127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import importlib
import os
import time

from fedfer.flower.internals import run_clientapp_task, shorten_clientapp_pulls, task_acquirer

WARM_MODULES = ("numpy", "torch", "sklearn.metrics", "scipy.stats", "flwr.clientapp", "flwr.app")
POLL_S = 0.2


def serve(runtime_api_address: str, poll_seconds: float = POLL_S) -> None:
    """Acquire ClientApp tasks from the SuperNode at `runtime_api_address` and fork one child per task, forever."""
    for name in WARM_MODULES:
        importlib.import_module(name)
    _warm_optimizer()
    shorten_clientapp_pulls()  # the children inherit it
    acquire = task_acquirer(runtime_api_address)
    while True:
        _reap_children()
        token = acquire()
        if token is not None and os.fork() == 0:
            _run_task(runtime_api_address, token)
        time.sleep(poll_seconds)


def _warm_optimizer() -> None:
    """One Adam step on a tiny layer, on one thread (as every client runs), so that torch's lazy
    imports happen here once. One thread also keeps the parent from starting an OpenMP pool that a
    forked child would inherit in a broken state."""
    import torch

    torch.set_num_threads(1)
    layer = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(layer.parameters())
    layer(torch.zeros(1, 2)).sum().backward()
    optimizer.step()


def _run_task(runtime_api_address: str, token: str) -> None:
    """In the child: Flower's ClientApp process body; it ends the process itself (flwr_exit)."""
    try:
        run_clientapp_task(runtime_api_address, token, os.getppid())
    finally:
        os._exit(0)  # never return into the parent's loop


def _reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime-api-address", required=True, help="the SuperNode's Runtime API (host:port)")
    parser.add_argument("--poll-seconds", type=float, default=POLL_S, help="pause between task requests")
    args = parser.parse_args()
    serve(args.runtime_api_address, args.poll_seconds)


if __name__ == "__main__":
    main()
