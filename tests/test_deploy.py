"""`fedfer deploy`: real SuperLink/SuperNode processes on loopback, with TLS and node authentication.

One deployment (3 SuperNodes, 2 rounds) is shared by the tests that need a finished run; it takes
about two minutes on two cores, mostly ClientApp processes importing PyTorch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, StartedProcesses
from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    load_ssh_private_key,
    load_ssh_public_key,
)
from flwr.common.config import parse_config_args

from fedfer.data.subject import load_subject, read_subjects_file
from fedfer.flower.certs import Credentials, make_credentials
from fedfer.flower.runtime import write_run_config
from fedfer.model.checkpoint import load_head
from fedfer.runs import bundles, deployment, supernodes


@pytest.fixture(scope="module")
def prepared(fake_run: dict) -> dict:
    return fake_run


@pytest.fixture(scope="module")
def deployed(prepared: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict, StartedProcesses]]:
    run_dir = tmp_path_factory.mktemp("deployment")
    with pytest.MonkeyPatch.context() as monkeypatch:
        started = StartedProcesses(monkeypatch)
        result = deployment.deploy_prepared(run_dir, {**prepared, "run-dir": str(run_dir)})
    yield run_dir, result, started


def test_deployment_with_tls_and_node_auth_completes_and_stops_every_process(deployed) -> None:
    run_dir, result, started = deployed

    assert (run_dir / "server" / "v_round_2.pt").is_file()
    traffic = result["superlink_traffic"]
    assert traffic["status"] == "finished:completed"
    # 2 rounds x 3 nodes, each way at least one copy of v() (about 0.85 MB)
    assert traffic["inbound_bytes"] > 6 * 0.8e6 and traffic["outbound_bytes"] > 6 * 0.8e6
    assert len(started.pids) == 4  # SuperLink + 3 SuperNodes
    assert started.leftovers(run_dir) == []


def test_unregistered_supernode_is_refused_and_stopped(
    prepared: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = StartedProcesses(monkeypatch)
    real_register = supernodes.register_supernode
    monkeypatch.setattr(
        deployment,
        "register_supernode",
        lambda key, env, log: None if key.name == "node-2.key.pub" else real_register(key, env, log),
    )

    with pytest.raises(RuntimeError, match="supernode-2 exited"):
        deployment.deploy_prepared(tmp_path, {**prepared, "run-dir": str(tmp_path)})

    assert "No SuperNode found with the given public key" in (tmp_path / "logs" / "superlink.log").read_text()
    assert "Failed to activate SuperNode" in (tmp_path / "logs" / "supernode-2.log").read_text()
    assert not (tmp_path / "logs" / "flower.log").exists()  # no run was started
    assert started.leftovers(tmp_path) == []


def test_deployment_matches_simulation(deployed, prepared: dict, codec_runs: dict) -> None:
    """The deployment's first round against the same round simulated (conftest's float32 codec run of the
    same prepared run, which the communication tests also read)."""
    deployed_dir, _, _ = deployed

    simulated = load_head(codec_runs["float32"].central_checkpoint(1), stage="vfer")[0].state_dict()
    federated = load_head(deployed_dir / "server" / "v_round_1.pt", stage="vfer")[0].state_dict()
    initial = load_head(Path(prepared["central-checkpoint"]), stage="vfer")[0].state_dict()
    assert simulated.keys() == federated.keys()
    for key in simulated:
        # Same client results; only the order replies arrive in (FedAvg's summation order) differs.
        torch.testing.assert_close(federated[key], simulated[key], rtol=1e-4, atol=1e-5, msg=key)
    assert any(not torch.equal(simulated[k], initial[k]) for k in simulated)  # the round changed v()


def test_compose_runs_the_launchers_commands() -> None:
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    nodes = sorted(name for name in services if name.startswith("supernode-"))
    in_container = Credentials(Path("/certs"))

    assert set(services) == {"superlink", *nodes} and len(nodes) >= 3
    assert services["superlink"]["command"] == deployment.superlink_command(
        host="0.0.0.0", port=9093, database="/state/state.db", credentials=in_container
    )
    for index, name in enumerate(nodes):
        service = services[name]
        data_dir, ifer = f"/data/{bundles.BUNDLE_SUBJECT}", f"/data/{bundles.BUNDLE_IFER}"
        assert service["command"] == supernodes.supernode_command(
            superlink="superlink:9093",
            port=9094,
            node_config=supernodes.node_config(index, data_dir, ifer),
            credentials=in_container,
            index=index,
        )
        mounts = {m["target"]: m["source"] for m in service["volumes"]}
        assert mounts["/data"] == f"${{FEDFER_LAB:-/srv/fedfer-lab}}/nodes/node-{index}"
        assert mounts[str(in_container.node_key(index))].endswith(f"/certs/supernodes/node-{index}.key")


def test_node_config_reaches_the_client_as_written(tmp_path: Path) -> None:
    config = supernodes.node_config(4, tmp_path / "a dir" / "subject", r"C:\models\g.pt")

    assert parse_config_args([config]) == {
        "partition-id": 4,
        "data-dir": str(tmp_path / "a dir" / "subject"),
        "ifer-checkpoint": r"C:\models\g.pt",
    }
    with pytest.raises(ValueError, match="single quote"):
        supernodes.node_config(0, "/data/o'brien", "/g.pt")


def test_credentials_name_the_superlink_hosts_and_load_as_flower_loads_them(tmp_path: Path) -> None:
    credentials = make_credentials(tmp_path, num_nodes=2, hosts=["10.0.0.5", "superlink"])

    certificate = x509.load_pem_x509_certificate(credentials.server_cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "10.0.0.5"}
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "superlink"}
    for index in range(2):
        load_ssh_private_key(credentials.node_key(index).read_bytes(), password=None)
        load_ssh_public_key(credentials.node_public_key(index).read_bytes())
        assert credentials.node_key(index).stat().st_mode & 0o077 == 0
    with pytest.raises(ValueError, match="neither an IP address nor a DNS name"):
        make_credentials(tmp_path / "bad", num_nodes=1, hosts=["http://10.0.0.5"])


def test_exported_node_bundle_holds_the_subject_and_g(prepared: dict, tmp_path: Path) -> None:
    write_run_config(tmp_path / "run" / "run_config.toml", prepared)

    nodes = bundles.export_nodes(tmp_path / "run", tmp_path / "nodes")

    original = load_subject(read_subjects_file(Path(prepared["subjects-file"]))[1])
    exported = load_subject(nodes[1] / bundles.BUNDLE_SUBJECT)
    assert [b.name for b in nodes] == ["node-0", "node-1", "node-2"]
    assert exported.clip_ids == original.clip_ids
    assert all((a == b).all() for a, b in zip(exported.features, original.features))
    assert len(list((nodes[1] / bundles.BUNDLE_SUBJECT / "features").iterdir())) == len(
        original.clip_ids
    )  # its clips only
    load_head(nodes[1] / bundles.BUNDLE_IFER, stage="ifer")


def test_the_lab_verbs_do_one_job_each_and_deploy_names_them(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from fedfer import cli
    from fedfer.runs.compose import compose_text

    assert cli.main(["lab", "certs", str(tmp_path / "certs"), "--clients", "2", "--host", "10.0.0.5"]) == 0
    credentials = Credentials(tmp_path / "certs")
    assert credentials.ca_cert.is_file() and credentials.node_key(1).is_file() and not credentials.node_key(2).exists()
    names = x509.load_pem_x509_certificate(credentials.server_cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert "10.0.0.5" in {str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)}

    compose = tmp_path / "b.yaml"
    assert cli.main(["lab", "compose", str(compose), "--nodes", "16-17", "--superlink", "10.0.0.5:9093"]) == 0
    command = f"fedfer lab compose {compose} --nodes 16-17 --superlink 10.0.0.5:9093"
    assert compose.read_text() == compose_text(range(16, 18), "10.0.0.5:9093", command)
    assert set(yaml.safe_load(compose.read_text())["services"]) == {"supernode-16", "supernode-17"}

    capsys.readouterr()
    for old, new in (
        (["--make-certs", "x"], "fedfer lab certs"),
        (["--export-nodes", "x"], "fedfer lab nodes"),
        (["--compose", "x"], "fedfer lab compose"),
    ):
        assert cli.main(["deploy", *old]) == 2
        assert new in capsys.readouterr().err
    assert cli.main(["lab", "compose", str(compose), "--superlink", "10.0.0.5:9093"]) == 2  # no --nodes
    assert "give its --nodes" in capsys.readouterr().err
