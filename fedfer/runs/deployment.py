"""`fedfer deploy`: the federation as real Flower processes — one SuperLink, one SuperNode per subject.

What `fedfer run` simulates, run the way a lab runs it, here on the loopback interface: a SuperLink
(`flower-superlink`, ServerApp in a subprocess), one `flower-supernode` per subject that serves only
that subject's directory (`--node-config "partition-id=… data-dir='…' ifer-checkpoint='…'"`), and
`flwr run` of this repository's apps against them. Secure by default: TLS with a CA made for the
run, and node authentication — each SuperNode has its own key, registered with
`flwr supernode register` before it starts; an unregistered node is refused.


The SuperNodes' command lines and node configs are `fedfer.runs.supernodes`; the same builders write
the lab's compose files (`fedfer.runs.compose`). After the run, the SuperLink's own byte counts
(`flwr ls --format json`, network-traffic) are added to the results.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedfer.config import CLIENTAPP_LAUNCHERS
from fedfer.data.subject import read_subjects_file
from fedfer.flower.certs import make_credentials
from fedfer.flower.runtime import (
    APP_DIR,
    IN_MEMORY_STATE,
    ProcessGroup,
    flower_env,
    free_port,
    run_record,
    stream_flower,
    superlink_command,
    wait_for_superlink,
    write_connection,
    write_run_config,
)
from fedfer.runconfig import FederationConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions
from fedfer.runs.study import run_study
from fedfer.runs.supernodes import CONNECTION, SuperNodes, register_supernode, wait_for_supernodes


@dataclass(frozen=True)
class Host:
    """One machine of a deployment: the address the others dial it at, and how to act from it.

    `fedfer deploy` puts every role on the loopback host. The two-machine test stands in for two
    machines with two network namespaces: its `enter` moves the calling thread into one, so the
    processes started and the connections opened inside it belong to that machine's network.
    """

    address: str = "127.0.0.1"
    enter: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext


LOOPBACK = Host()


def deploy_prepared(
    run_dir: Path,
    values: Mapping[str, Any],
    *,
    insecure: bool = False,
    verbose: bool = False,
    superlink_host: Host = LOOPBACK,
    node_host: Host = LOOPBACK,
    launcher: str = "subprocess",
    node_route: Callable[[str], str] | None = None,
    during: Callable[[SuperNodes], object] | None = None,
) -> dict[str, Any]:
    """Run the federation of a prepared run on real SuperLink/SuperNode processes.

    `values` are the run-config overrides (`run_config_values`); the subjects are those of its
    `subjects-file`, served in that order (partition i = subject i). The SuperLink (and with it the
    ServerApp) runs on `superlink_host`, bound to its address, which the certificate names; the
    SuperNodes and the operator's `flwr` commands run on `node_host` and dial that address. Every
    process started here is stopped when this returns or raises. Returns what the results gain: the
    SuperLink's byte counts and the wall time of `flwr run`. `launcher` (CLIENTAPP_LAUNCHERS): how a
    SuperNode runs its ClientApps, a fresh process per message (Flower's default) or forked from a
    warm process (`fedfer.flower.forked_clientapps`, with the quicker SuperNode of
    `fedfer.flower.quick_supernode`). `node_route`: given the SuperLink's address, the address
    the SuperNodes dial instead (a relay that counts the wire's bytes, `fedfer.flower.relay`);
    the operator's `flwr` commands still dial the SuperLink itself.
    `during`, when given, is called with the SuperNodes in a thread while `flwr run` runs (a fault drill:
    kill a node mid-round, restart it); what it raises is raised here once the run has ended.
    """
    if launcher not in CLIENTAPP_LAUNCHERS:
        raise ValueError(f"ClientApp launcher {launcher!r} is not one of {', '.join(CLIENTAPP_LAUNCHERS)}")
    run = RunDir(run_dir)
    config = FederationConfig.from_run_config(dict(values))
    subjects = read_subjects_file(config.subjects_file)
    flwr_home = run.flwr_home
    credentials = None if insecure else make_credentials(run.credentials, len(subjects), [superlink_host.address])
    ca_cert = credentials and credentials.ca_cert
    port = free_port()
    address = f"{superlink_host.address}:{port}"
    logs = run.logs
    env = flower_env(flwr_home)
    with ProcessGroup(logs) as processes:
        with superlink_host.enter():
            # The SuperLink lives for this run only and is asked for its counts before it stops: its state
            # stays in memory. Flower's SQLite file store cost about 5 s per round of 3 clients (each array
            # a row written and read back), more than the clients' work.
            command = superlink_command(
                host=superlink_host.address, port=port, database=IN_MEMORY_STATE, credentials=credentials
            )
            superlink = processes.start("superlink", command, env)
            wait_for_superlink(port, superlink, logs / "superlink.log", host=superlink_host.address, ca_cert=ca_cert)
        with node_host.enter():
            write_connection(flwr_home, CONNECTION, address, insecure=credentials is None, root_certificates=ca_cert)
            node_address = node_route(address) if node_route else address
            nodes = SuperNodes(
                processes, node_address, subjects, config.ifer_checkpoint, credentials, flwr_home, launcher
            )
            for index in range(len(subjects)):
                if credentials is not None:
                    nodes.node_ids[index] = register_supernode(
                        credentials.node_public_key(index), env, logs / "register.log"
                    )
                nodes.start(index)
            wait_for_supernodes([nodes.running[i][0] for i in range(len(subjects))], env, logs)
            config_file = write_run_config(run.run_config, values)
            with ThreadPoolExecutor(max_workers=1) as pool:
                drill = pool.submit(during, nodes) if during is not None else None
                started = time.monotonic()
                flower_run = stream_flower(APP_DIR, CONNECTION, config_file, env, run.flower_log, verbose)
                seconds = time.monotonic() - started
                if drill is not None:
                    drill.result()
            traffic = superlink_traffic(flower_run, env)
    return {"superlink_traffic": traffic, "flower_seconds": seconds}


def superlink_traffic(run: int, env: Mapping[str, str]) -> dict[str, Any]:
    """The SuperLink's byte counts of run `run` (`flwr ls --run-id … --format json`, network-traffic)."""
    entry = run_record(CONNECTION, run, env)
    traffic = {key.replace("-", "_"): value for key, value in entry["network-traffic"].items()}
    return {"run_id": run, **traffic, "status": entry["status"]}


def deploy(options: RunOptions, *, insecure: bool = False, launcher: str = "subprocess") -> Path:
    """`fedfer deploy`: prepare the run, federate it on real processes, write the report. Returns the run directory."""

    def federate(run_dir: Path, values: dict[str, Any]) -> dict[str, Any]:
        print("one SuperNode per subject, " + ("insecure" if insecure else "TLS + node authentication"))
        return deploy_prepared(run_dir, values, insecure=insecure, verbose=options.verbose, launcher=launcher)

    prepared, summary = run_study(options, federate, "deployment")
    traffic = summary["superlink_traffic"]
    print(
        f"SuperLink traffic: {traffic['inbound_bytes'] / 1e6:.2f} MB in, {traffic['outbound_bytes'] / 1e6:.2f} MB out"
    )
    return prepared.run.root
