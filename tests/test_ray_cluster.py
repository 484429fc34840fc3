"""When one machine is not enough: `fedfer`'s simulation on a running multi-node Ray cluster.

The route a user takes (fedfer/runs/options.py, `--ray-address`): `ray start --head` on one machine,
`ray start --address=…` on the others, then the same run with `--ray-address`. Here both Ray nodes
run on this machine, on free ports and in a temp dir of their own, each `ray start --block` in its
own process group, so the teardown stops exactly these processes (never `ray stop`, which stops every
Ray instance of the user).
"""

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import StartedProcesses

from fedfer.flower.runtime import ProcessGroup, free_port
from fedfer.runconfig import CrowdConfig
from fedfer.rundir import RunDir
from fedfer.runs.scale import crowd_model_of, simulate_crowd

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
CLIENT_ACTOR = b"ray::ClientAppActor"


def ray_node_command(head_port: int, temp_dir: Path, *, head: bool) -> list[str]:
    """`ray start --block` of one node with 1 CPU, every port chosen free (other Ray instances may run here)."""
    ports = [
        "--object-manager-port",
        "--node-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    ]
    command = ["ray", "start", "--block", "--disable-usage-stats", "--num-cpus", "1", "--node-ip-address", "127.0.0.1"]
    for flag in ports:
        command += [flag, str(free_port())]
    if head:
        return [*command, "--head", "--port", str(head_port), "--temp-dir", str(temp_dir)] + [
            "--include-dashboard",
            "false",
            "--ray-client-server-port",
            str(free_port()),
        ]
    return [*command, "--address", f"127.0.0.1:{head_port}"]


def cluster_nodes(address: str) -> int:
    status = subprocess.run(["ray", "status", "--address", address], capture_output=True, text=True, timeout=60)
    active = status.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
    return active.count("node_")


def descendants_of(root: int) -> dict[int, bytes]:
    """{pid: command line} of every live descendant of `root` (Linux /proc)."""
    parents, commands = {}, {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            commands[int(entry.name)] = (entry / "cmdline").read_bytes()
        except OSError:
            continue
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = commands[pid]
                frontier.append(pid)
    return found


def test_a_run_joins_a_running_two_node_ray_cluster_and_clients_run_on_both(
    prepared_tiny: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = StartedProcesses(monkeypatch)
    temp_dir = Path(tempfile.mkdtemp(prefix="fedfer-ray-", dir="/tmp"))  # Ray's socket paths must stay short
    head_port = free_port()
    address = f"127.0.0.1:{head_port}"
    env = {**os.environ, **RAY_ENV}
    seen: dict[str, set[int]] = {"head": set(), "second": set()}
    try:
        with ProcessGroup(tmp_path / "ray-logs") as cluster:
            head = cluster.start("ray-head", ray_node_command(head_port, temp_dir, head=True), env)
            deadline = time.monotonic() + 180
            while cluster_nodes(address) < 1 and time.monotonic() < deadline:
                time.sleep(2)
            second = cluster.start("ray-second", ray_node_command(head_port, temp_dir, head=False), env)
            while cluster_nodes(address) < 2 and time.monotonic() < deadline:
                time.sleep(2)
            assert cluster_nodes(address) == 2, (tmp_path / "ray-logs" / "ray-second.log").read_text()[-2000:]

            done = threading.Event()

            def watch() -> None:  # which node's raylet each ClientApp actor runs under
                while not done.is_set():
                    for name, node in (("head", head), ("second", second)):
                        seen[name] |= {p for p, c in descendants_of(node.pid).items() if c.startswith(CLIENT_ACTOR)}
                    done.wait(0.5)

            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                out = tmp_path / "crowd-on-cluster"
                model = str(crowd_model_of(prepared_tiny, tmp_path))
                simulate_crowd(
                    prepared_tiny,
                    out,
                    CrowdConfig(model=model, size=4, subjects_per_node=1),
                    rounds=1,
                    ray_address=address,
                )
            finally:
                done.set()
                watcher.join()
            recorded = RunDir(out).rounds.read_text()
            assert '"subjects": 1' in recorded and recorded.count('"train"') == 4
            assert cluster_nodes(address) == 2  # the run joined the cluster; it did not start or stop Ray
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert seen["head"] and seen["second"], seen  # clients ran on both machines' raylets
    assert started.leftovers(temp_dir) == []
