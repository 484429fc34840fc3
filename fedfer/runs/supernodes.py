"""A deployment's SuperNodes: their command lines and node configs (the one definition, which the
lab's compose files use too), and starting, registering, watching and restarting them.

Each SuperNode serves one subject's directory (`--node-config "partition-id=… data-dir='…'
ifer-checkpoint='…'"`) with its own key, registered with `flwr supernode register` before it
starts; an unregistered node is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedfer.federation.protocol import NODE_DATA_DIR, NODE_IFER_CHECKPOINT, PARTITION_ID
from fedfer.flower.certs import Credentials
from fedfer.flower.runtime import ProcessGroup, flower_env, free_port

CONNECTION = "fedfer-deploy"  # the `flwr` connection name of a deployment's SuperLink


def supernode_command(
    *, superlink: str, port: int, node_config: str, credentials: Credentials | None, index: int, forked: bool = False
) -> list[str]:
    """`flower-supernode` number `index`, its ClientApp API on `port` (unique per host), dialling
    `superlink` (host:port). `forked`: fedfer's lab mode, in which it launches no ClientApp itself
    (`--isolation process`; `forked_clientapps_command` does) and runs as
    `fedfer.flower.quick_supernode`, which asks for work every 0.25 s instead of every 3 s."""
    supernode = [sys.executable, "-m", "fedfer.flower.quick_supernode"] if forked else ["flower-supernode"]
    command = [*supernode, "--superlink", superlink, "--port", str(port), "--node-config", node_config]
    if forked:
        command += ["--isolation", "process"]
    if credentials is None:
        return [*command, "--insecure"]
    return [
        *command,
        "--root-certificates",
        str(credentials.ca_cert),
        "--auth-supernode-private-key",
        str(credentials.node_key(index)),
    ]


def forked_clientapps_command(port: int) -> list[str]:
    """The warm process that forks the ClientApps of the SuperNode whose Runtime API is on loopback `port`."""
    return [sys.executable, "-m", "fedfer.flower.forked_clientapps", "--runtime-api-address", f"127.0.0.1:{port}"]


def node_config(partition: int, data_dir: Path | str, ifer_checkpoint: Path | str) -> str:
    """The node config of the SuperNode serving subject `partition` (keys read by client_app.py).

    Paths are TOML literal strings ('…'): no escapes, so Windows-style or unusual paths pass as they
    are; only a path containing a single quote cannot be written that way.
    """
    values = {PARTITION_ID: partition, NODE_DATA_DIR: str(data_dir), NODE_IFER_CHECKPOINT: str(ifer_checkpoint)}
    parts = []
    for key, value in values.items():
        if isinstance(value, str):
            if "'" in value:
                raise ValueError(
                    f"{key} {value!r} contains a single quote, which a SuperNode's --node-config cannot carry; "
                    "move or rename it"
                )
            value = f"'{value}'"
        parts.append(f"{key}={value}")
    return " ".join(parts)


@dataclass
class SuperNodes:
    """The deployment's SuperNodes, partition i served by node i with its own key; a node can be
    killed and started again, as a lab machine crashes and comes back.

    Flower keeps a node online until it misses heartbeats for 2 × 30 s and refuses to activate a
    node that is online ("Failed to activate SuperNode"), so `restart` waits until the SuperLink
    lists the killed node as offline before it starts it again with the same key (node auth then
    accepts it, and it keeps its node id).
    """

    processes: ProcessGroup
    superlink: str  # host:port the nodes dial
    subjects: list[Path]
    ifer_checkpoint: str
    credentials: Credentials | None
    flwr_home: Path
    launcher: str = "subprocess"
    node_ids: dict[int, int] = field(default_factory=dict)  # partition → node id registered for its key
    running: dict[int, list[subprocess.Popen]] = field(default_factory=dict)  # partition → its processes

    def start(self, index: int) -> subprocess.Popen:
        """Start the SuperNode of partition `index` (and its ClientApp launcher when forked)."""
        runtime_port = free_port()
        command = supernode_command(
            superlink=self.superlink,
            port=runtime_port,
            node_config=node_config(index, self.subjects[index], self.ifer_checkpoint),
            credentials=self.credentials,
            index=index,
            forked=self.launcher == "forked",
        )
        # Each SuperNode keeps its own Flower home (app cache), as on its own machine.
        node_env = flower_env(self.flwr_home / f"supernode-{index}")
        self.running[index] = [self.processes.start(f"supernode-{index}", command, node_env)]
        if self.launcher == "forked":
            self.running[index].append(
                self.processes.start(f"clientapps-{index}", forked_clientapps_command(runtime_port), node_env)
            )
        return self.running[index][0]

    def kill(self, index: int) -> None:
        """SIGKILL every process group of partition `index`'s node, the SuperNode and its ClientApps: a
        crash, so the node cannot say goodbye to the SuperLink as it does on SIGTERM."""
        for process in self.running.pop(index):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def restart(self, index: int, timeout: float = 120.0) -> None:
        """Start partition `index`'s node again once the SuperLink has it offline; return when it is online."""
        env = flower_env(self.flwr_home)
        node_id = self.node_ids.get(index)  # None without node auth: the node comes back under a new id
        deadline = time.monotonic() + timeout
        while node_id is not None and node_status(node_id, env) == "online":
            if time.monotonic() > deadline:
                raise RuntimeError(f"supernode-{index} (node {node_id}) still online {timeout:.0f} s after it stopped")
            time.sleep(1.0)
        process = self.start(index)
        while node_id is not None and node_status(node_id, env) != "online":
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"supernode-{index} did not come back online; see "
                    f"{self.processes.log_dir / f'supernode-{index}.log'}"
                )
            time.sleep(1.0)


def supernode_list(env: Mapping[str, str]) -> list[dict[str, Any]]:
    """The SuperLink's nodes (`flwr supernode list --format json`): node-id, status, …; [] when it does not answer."""
    result = subprocess.run(
        ["flwr", "supernode", "list", CONNECTION, "--format", "json"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        return json.loads(result.stdout)["nodes"]
    except (ValueError, KeyError):
        return []


def node_status(node_id: int, env: Mapping[str, str]) -> str | None:
    """The SuperLink's status of node `node_id` ("online", "offline", …; None when it is not listed)."""
    return next((n["status"] for n in supernode_list(env) if int(n["node-id"]) == node_id), None)


def register_supernode(public_key: Path, env: Mapping[str, str], log_file: Path) -> int:
    """`flwr supernode register KEY.pub` on the run's SuperLink; returns the node id Flower gave the
    key, raises with Flower's answer when refused."""
    result = subprocess.run(
        ["flwr", "supernode", "register", str(public_key), CONNECTION, "--format", "json"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    with open(log_file, "a") as log:
        log.write(result.stdout + result.stderr)
    try:
        answer = json.loads(result.stdout)
    except ValueError:
        answer = {}
    if result.returncode != 0 or not answer.get("success") or "node-id" not in answer:
        raise RuntimeError(
            f"`flwr supernode register {public_key}` failed (exit code {result.returncode}): "
            f"{result.stdout.strip() or result.stderr.strip()}"
        )
    return int(answer["node-id"])


def wait_for_supernodes(
    supernodes: list[subprocess.Popen], env: Mapping[str, str], log_dir: Path, timeout: float = 120.0
) -> None:
    """Block until every SuperNode is online at the SuperLink.

    The ServerApp waits for `num-clients` nodes without a deadline, so a node that was refused
    (unregistered key, wrong CA) must be caught here, with the log that says why.
    """
    deadline = time.monotonic() + timeout
    while True:
        for index, process in enumerate(supernodes):
            if process.poll() is not None:
                raise RuntimeError(
                    f"supernode-{index} exited with code {process.returncode} before joining; see "
                    f"{log_dir / f'supernode-{index}.log'} and {log_dir / 'superlink.log'}"
                )
        online = sum(node["status"] == "online" for node in supernode_list(env))
        if online >= len(supernodes):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"only {online} of {len(supernodes)} SuperNodes online after {timeout:.0f} s; see the "
                f"supernode-<i>.log files in {log_dir}"
            )
        time.sleep(1.0)
