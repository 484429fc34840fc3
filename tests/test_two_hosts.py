"""Two machines on one: the SuperLink on one host, the SuperNodes and the operator on another.

The hosts are two network namespaces this test creates and joins with a veth pair, each end with
its own address; nothing but these two addresses and each namespace's loopback is used. The run is
what a lab runs across machines: TLS with the SuperLink's address in its certificate, node
authentication, 2 rounds, and `central-eval = false` (the SuperLink host scores nothing). The
packages the container images leave out (see docker/requirements.txt) are made unimportable for
the Flower processes, so the run shows the images' packages suffice. Afterwards every process and
both namespaces are gone. Where namespaces cannot be created (no privilege), the test says so and skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import StartedProcesses
from cryptography import x509

from fedfer.rundir import RunDir
from fedfer.runs import deployment
from fedfer.testing import build_fake_run

SUPERLINK_IP, NODES_IP, PREFIX = "10.231.19.1", "10.231.19.2", 30  # exist only inside the two namespaces
# Installed here, left out of the container images: the federation must run without them.
NOT_IN_IMAGE = ("cv2", "mediapipe", "torchvision", "h5py", "ray")
IMAGE_ONLY = """import importlib.abc
import sys


class LeftOutOfTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"{{name}} is not in the container image (docker/requirements.txt)")
        return None


sys.meta_path.insert(0, LeftOutOfTheImage())
"""


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """The calling thread in network namespace `name`; what it starts or connects to is that host's."""
    from pyroute2 import netns

    netns.pushns(name)
    try:
        yield
    finally:
        netns.popns()


@contextlib.contextmanager
def two_hosts() -> Iterator[tuple[deployment.Host, deployment.Host, list[str]]]:
    """Two namespaces joined by a veth pair (SUPERLINK_IP ↔ NODES_IP), removed on exit."""
    pytest.importorskip("pyroute2", reason="the two-host test needs pyroute2 (pip install -e '.[dev]')")
    from pyroute2 import IPRoute, NetNS, netns

    names = [f"fedfer-link-{os.getpid()}", f"fedfer-nodes-{os.getpid()}"]
    ends = [f"fl{os.getpid()}", f"fn{os.getpid()}"]  # interface names: at most 15 characters
    try:
        for name in names:
            netns.create(name)
        with IPRoute() as ip:
            ip.link("add", ifname=ends[0], kind="veth", peer={"ifname": ends[1], "net_ns_fd": names[1]})
            ip.link("set", index=ip.link_lookup(ifname=ends[0])[0], net_ns_fd=names[0])
        for name, end, address in zip(names, ends, (SUPERLINK_IP, NODES_IP)):
            with NetNS(name) as ns:
                index = ns.link_lookup(ifname=end)[0]
                ns.addr("add", index=index, address=address, prefixlen=PREFIX)
                ns.link("set", index=index, state="up")
                ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
    except Exception as err:  # no privilege (EPERM), no netns support: the same answer
        for name in names:
            with contextlib.suppress(Exception):
                netns.remove(name)
        pytest.skip(f"cannot create network namespaces on this machine ({type(err).__name__}: {err}); needs root")
    try:
        yield (
            deployment.Host(SUPERLINK_IP, lambda: inside(names[0])),
            deployment.Host(NODES_IP, lambda: inside(names[1])),
            names,
        )
    finally:
        for name in names:  # removing a namespace removes its end of the veth pair, and so the pair
            netns.remove(name)


def test_superlink_and_supernodes_on_two_hosts_without_central_eval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared = build_fake_run(tmp_path / "prepared", num_subjects=2)
    run_dir = tmp_path / "run"
    image_only = tmp_path / "image-only"
    image_only.mkdir()
    (image_only / "sitecustomize.py").write_text(IMAGE_ONLY.format(blocked=NOT_IN_IMAGE))
    monkeypatch.setenv("PYTHONPATH", str(image_only))  # for the Flower processes, not for this one
    started = StartedProcesses(monkeypatch)

    with two_hosts() as (superlink_host, node_host, names):
        from pyroute2 import netns

        assert set(names) <= set(netns.listnetns())
        result = deployment.deploy_prepared(
            run_dir,
            {**prepared, "run-dir": str(run_dir), "central-eval": False},
            superlink_host=superlink_host,
            node_host=node_host,
        )

    run = RunDir(run_dir)
    traffic = result["superlink_traffic"]
    assert traffic["status"] == "finished:completed"
    assert traffic["inbound_bytes"] > 2 * 2 * 0.8e6 and traffic["outbound_bytes"] > 2 * 2 * 0.8e6
    certificate = x509.load_pem_x509_certificate((run.credentials / "server.pem").read_bytes())
    names_in_cert = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert SUPERLINK_IP in {str(ip) for ip in names_in_cert.get_values_for_type(x509.IPAddress)}
    # The SuperLink saw the SuperNodes join and the operator start the run from the other host.
    requests = set(re.findall(r'([\d.]+):\d+ - "POST (/v1/\S+)', (run.logs / "superlink.log").read_text()))
    assert {(NODES_IP, "/v1/fleet/activate-node"), (NODES_IP, "/v1/control/start-run")} <= requests
    # central-eval = false: v() checkpointed every round, never scored on the server; the report has
    # the clients' personalized models and no central-model rows.
    assert run.central_checkpoint(2).is_file() and not list(run.server.glob("central_round_*.json"))
    summary = json.loads(run.summary.read_text())
    assert "personalized" in summary and "central_before" not in summary and summary["subjects_missing"] == []
    assert [r["round"] for r in summary["rounds"]] == [1, 2]
    assert "not in the container image" not in "".join(p.read_text() for p in run.logs.glob("*.log"))
    assert len(started.pids) == 3  # SuperLink + 2 SuperNodes
    assert started.leftovers(tmp_path) == []
    assert not set(names) & set(netns.listnetns())
