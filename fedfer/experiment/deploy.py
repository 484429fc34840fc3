"""`fedfer deploy`: the federation as real Flower processes — one SuperLink, one SuperNode per subject.

What `fedfer run` simulates, run the way a lab runs it, here on the loopback interface: a SuperLink
(`flower-superlink`, ServerApp in a subprocess), one `flower-supernode` per subject that serves only
that subject's directory (`--node-config "partition-id=… data-dir='…' ifer-checkpoint='…'"`), and
`flwr run` of this repository's apps against them. Secure by default: TLS with a CA made for the
run, and node authentication — each SuperNode has its own key, registered with
`flwr supernode register` before it starts; an unregistered node is refused.

The command builders below are the single definition of the flags; `docker/compose.yaml` uses the
same ones (a test compares them). After the run, the SuperLink's own byte counts (`flwr ls --format
json`, network-traffic) are added to the results.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedfer.config import CLIENTAPP_LAUNCHERS, RunOptions
from fedfer.experiment.prepare import prepare_run, run_study
from fedfer.experiment.rundir import RunDir
from fedfer.federation.certs import Credentials, make_credentials
from fedfer.federation.protocol import NODE_DATA_DIR, NODE_IFER_CHECKPOINT, PARTITION_ID
from fedfer.federation.runtime import (
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
from fedfer.federation.subject import MANIFEST, read_subjects_file
from fedfer.io import atomic_write_json

CONNECTION = "fedfer-deploy"
# A SuperNode's data bundle (`--export-nodes`): what a lab machine or container mounts as its data.
BUNDLE_SUBJECT = "subject"  # subject.json + features/
BUNDLE_IFER = "g.pt"  # the frozen g() that pseudo-labels the subject's videos


def supernode_command(
    *, superlink: str, port: int, node_config: str, credentials: Credentials | None, index: int, forked: bool = False
) -> list[str]:
    """`flower-supernode` number `index`, its ClientApp API on `port` (unique per host), dialling
    `superlink` (host:port). `forked`: fedfer's lab mode, in which it launches no ClientApp itself
    (`--isolation process`; `forked_clientapps_command` does) and runs as
    `fedfer.federation.quick_supernode`, which asks for work every 0.25 s instead of every 3 s."""
    supernode = [sys.executable, "-m", "fedfer.federation.quick_supernode"] if forked else ["flower-supernode"]
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
    return [sys.executable, "-m", "fedfer.federation.forked_clientapps", "--runtime-api-address", f"127.0.0.1:{port}"]


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


def export_nodes(run_dir: Path, out_dir: Path) -> list[Path]:
    """One self-contained folder per SuperNode: `subject/` (manifest + its clips' features) and `g.pt`.

    This is all a lab machine needs (besides its key and ca.crt); the manifest points at the
    features relatively, so the folder can be mounted or copied anywhere.
    """
    values = _read_toml(RunDir(run_dir).run_config)
    if not values.get("ifer-checkpoint"):
        raise ValueError(
            f"{RunDir(run_dir).run_config} uses the pixel teacher {values.get('teacher')!r}, whose nodes need their "
            "videos; node bundles carry features and g() only: export a run with a g() teacher (--teacher "
            "crema-frames or affectnet)"
        )
    bundles = []
    for partition, subject_dir in enumerate(read_subjects_file(values["subjects-file"])):
        bundle = out_dir / f"node-{partition}"
        manifest = json.loads((subject_dir / MANIFEST).read_text())
        source = subject_dir / manifest["feature_dir"]  # an absolute feature_dir stays as it is
        features = bundle / BUNDLE_SUBJECT / "features"
        features.mkdir(parents=True, exist_ok=True)
        for clip in manifest["clips"]:
            shutil.copy2(source / f"{clip['clip_id']}.npz", features)
        atomic_write_json(bundle / BUNDLE_SUBJECT / MANIFEST, {**manifest, "feature_dir": "features"})
        shutil.copy2(values["ifer-checkpoint"], bundle / BUNDLE_IFER)
        bundles.append(bundle)
    return bundles


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: prepare the run first (`fedfer deploy --export-nodes DIR` with the run's flags "
            "writes it)"
        )
    return tomllib.loads(path.read_text())


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
    warm process (`fedfer.federation.forked_clientapps`, with the quicker SuperNode of
    `fedfer.federation.quick_supernode`). `node_route`: given the SuperLink's address, the address
    the SuperNodes dial instead (a relay that counts the wire's bytes, `fedfer.federation.relay`);
    the operator's `flwr` commands still dial the SuperLink itself.
    `during`, when given, is called with the SuperNodes in a thread while `flwr run` runs (a fault drill:
    kill a node mid-round, restart it); what it raises is raised here once the run has ended.
    """
    if launcher not in CLIENTAPP_LAUNCHERS:
        raise ValueError(f"ClientApp launcher {launcher!r} is not one of {', '.join(CLIENTAPP_LAUNCHERS)}")
    run = RunDir(run_dir)
    subjects = read_subjects_file(values["subjects-file"])
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
                processes, node_address, subjects, values["ifer-checkpoint"], credentials, flwr_home, launcher
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


def prepare_nodes(options: RunOptions, out_dir: Path) -> list[Path]:
    """Prepare the run and write one data bundle per SuperNode for lab machines (see docker/README.md)."""
    prepared = prepare_run(options)
    bundles = export_nodes(prepared.run.root, out_dir)
    print(
        f"{len(bundles)} node bundles in {out_dir} (node-<i> serves partition-id=i); run config: "
        f"{prepared.run.run_config}"
    )
    return bundles
