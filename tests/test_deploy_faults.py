"""Deployment faults: a SuperNode killed in the middle of a round, and the same node back for the next.

A real deployment (SuperLink + 3 SuperNodes, TLS + node authentication, 2 rounds): once the
ClientApp of partition 2 has taken round 1's train message, its SuperNode's process group is
SIGKILLed. Flower keeps a silent node online for 2 × 30 s of missed heartbeats, then answers the
server for it ("Node Unavailable"); the restarted node, same key, is accepted once the SuperLink
has it offline and takes part in round 2. About 3.5 minutes on two busy cores, one of them that
wait (Flower 1.42's heartbeat interval is fixed), most of the rest ClientApps importing PyTorch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import StartedProcesses

from fedfer.federation.protocol import PARTITION_ID
from fedfer.runs import deployment, supernodes
from fedfer.testing import build_fake_run

KILLED = 2  # the partition whose SuperNode dies mid-round


def clientapps(group: int) -> list[int]:
    """PIDs of the live `flwr-clientapp` processes in process group `group` (Linux /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == group and b"flwr-clientapp" in cmdline:
            found.append(int(entry.name))
    return found


def test_a_supernode_killed_mid_round_is_recorded_and_its_restart_joins_the_next_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = build_fake_run(tmp_path / "prepared")
    run_dir = tmp_path / "run"
    started = StartedProcesses(monkeypatch)
    times: dict[str, float] = {}

    def kill_mid_round_then_restart(nodes: supernodes.SuperNodes) -> None:
        group = nodes.running[KILLED][0].pid
        deadline = time.monotonic() + 120
        while not clientapps(group):  # its ClientApp has taken round 1's train message
            assert time.monotonic() < deadline, "no ClientApp started on the node to kill"
            time.sleep(0.1)
        nodes.kill(KILLED)
        times["killed"] = time.monotonic()
        nodes.restart(KILLED)
        times["back"] = time.monotonic()

    begun = time.monotonic()
    deployment.deploy_prepared(
        run_dir, {**values, "run-dir": str(run_dir), "round-timeout": 150.0}, during=kill_mid_round_then_restart
    )
    seconds = time.monotonic() - begun

    rounds = json.loads((run_dir / "server" / "rounds.json").read_text())
    first, second = rounds
    trained = {
        r["round"]: {int(c["train"][PARTITION_ID]) for c in r["clients"].values() if "train" in c} for r in rounds
    }
    failed = {node: c["error"] for node, c in first["clients"].items() if "error" in c}
    partition_nodes = {int(c["train"][PARTITION_ID]): node for node, c in second["clients"].items() if "train" in c}
    print(
        f"killed -> back online {times['back'] - times['killed']:.0f} s; round 1 {first['seconds']:.0f} s, "
        f"round 2 {second['seconds']:.0f} s, whole deployment {seconds:.0f} s; round 1 failure: {failed}"
    )
    assert trained == {1: {0, 1}, 2: {0, 1, 2}}  # round 1 completed without it; round 2 with the restarted node
    # Flower's own answer for the silent node, recorded against it; back with the same key, it kept its node id
    assert list(failed) == [partition_nodes[KILLED]]
    assert failed[partition_nodes[KILLED]].startswith("Error: Node Unavailable")
    assert not any("error" in c for c in second["clients"].values())
    assert (run_dir / "server" / "v_round_2.pt").is_file()
    assert started.leftovers(run_dir) == []
