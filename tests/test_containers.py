"""The lab's container files: compose files per host role, the images' Dockerfile, pins and context.

There is no Docker engine in the test environment: the images are not built here. What is checked
is what can be without one — the compose files as Docker Compose itself reads them (`config`, when
the compose plugin or docker-compose is installed; otherwise that test skips saying so), and the
Dockerfile, requirement and constraint files against the code they must match.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fedfer.runs import compose

DOCKER = REPO / "docker"
# The packages the images leave out (tests/test_two_hosts.py runs a deployment without them).
NOT_IN_IMAGE = {"mediapipe", "opencv-contrib-python", "torchvision", "h5py", "ray"}


def compose_command() -> list[str]:
    """`docker compose` (the plugin) or `docker-compose`, whichever answers; skip when neither does."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) and subprocess.run([*command, "version"], capture_output=True).returncode == 0:
            return command
    pytest.skip("neither the Docker Compose plugin nor docker-compose is installed: compose files not validated")


def compose_config(command: list[str], *files: Path) -> dict:
    """The compose model Compose builds from `files`, with none of the lab's variables set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDFER_")}
    arguments = [a for f in files for a in ("-f", str(f))]
    result = subprocess.run([*command, *arguments, "config"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_one_host_compose_file_is_the_generators_output() -> None:
    written = compose.compose_text(range(3), None, "fedfer lab compose docker/compose.yaml --nodes 0-2")

    assert (DOCKER / "compose.yaml").read_text() == written, "regenerate docker/compose.yaml (see its header)"


def test_compose_files_validate_for_a_superlink_host_and_a_supernode_host(tmp_path: Path) -> None:
    command = compose_command()
    link, nodes = tmp_path / "superlink.yaml", tmp_path / "supernodes.yaml"
    link.write_text(compose.compose_text(range(0), None, "test"))
    nodes.write_text(compose.compose_text(range(16, 31), "10.0.0.5:9093", "test"))

    link_host = compose_config(command, link)["services"]
    node_host = compose_config(command, nodes)["services"]
    one_host = compose_config(command, DOCKER / "compose.yaml")["services"]

    assert list(link_host) == ["superlink"]
    assert "healthcheck" in link_host["superlink"] and link_host["superlink"]["restart"] == "unless-stopped"
    # A SuperNode-only host: no SuperLink, nothing waits for one, it dials the given address, and
    # none of the SuperLink host's paths is mounted.
    assert sorted(node_host) == sorted(f"supernode-{i}" for i in range(16, 31))
    for name, service in node_host.items():
        index, argv = name.split("-")[1], service["command"]
        assert "depends_on" not in service and service["restart"] == "unless-stopped" and "healthcheck" in service
        assert argv[argv.index("--superlink") + 1] == "10.0.0.5:9093"
        assert argv[argv.index("--node-config") + 1].startswith(f"partition-id={index} ")
        targets = {m["target"] for m in service["volumes"]}
        assert targets == {"/data", "/certs/ca.crt", f"/certs/supernodes/node-{index}.key"}
    # With no variable set, the lab folder is the documented default, outside any repository.
    assert {m["source"] for m in link_host["superlink"]["volumes"] if m["type"] == "bind"} >= {
        "/srv/fedfer-lab/certs/server.key",
        "/srv/fedfer-lab/results",
    }
    # One host: the SuperNodes start once the SuperLink is healthy.
    for name in ("supernode-0", "supernode-1", "supernode-2"):
        assert one_host[name]["depends_on"]["superlink"]["condition"] == "service_healthy"


def test_images_run_unprivileged_with_health_checks_and_pinned_versions() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    requirements = [
        Requirement(line) for line in (DOCKER / "requirements.txt").read_text().splitlines() if line[:1].isalnum()
    ]
    pins = {
        canonicalize_name(r.name): r
        for r in (
            Requirement(line) for line in (DOCKER / "constraints.txt").read_text().splitlines() if line[:1].isalnum()
        )
    }
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    exact = {canonicalize_name(r.name): r.specifier for r in map(Requirement, project) if "==" in str(r.specifier)}

    assert re.search(r"^USER 1000:1000$", dockerfile, re.M)  # not root
    for target, arguments in (("superlink", "'localhost', 9093, '/certs/ca.crt'"), ("supernode", "'127.0.0.1', 9094")):
        stage = dockerfile.split(f"AS {target}\n", 1)[1].split("\nFROM ", 1)[0]
        health = compose.healthcheck(arguments)
        assert f'"{health["test"][-1]}"' in stage.split("HEALTHCHECK", 1)[1], target  # the compose files' check
    assert "-c docker/constraints.txt" in dockerfile
    versions = {name: [s.version for s in pin.specifier if s.operator == "=="] for name, pin in pins.items()}
    assert all(len(v) == 1 for v in versions.values())  # every line an exact pin
    for requirement in requirements:  # every requirement pinned, at a version it accepts ...
        assert requirement.specifier.contains(versions[canonicalize_name(requirement.name)][0]), requirement
    for name in ("flwr", "torch"):  # ... and at the version the project itself pins
        assert pins[name].specifier == exact[name]
    assert not NOT_IN_IMAGE & set(pins)
    # The build context is an allow-list: nothing but what the Dockerfile copies enters it.
    rules = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert rules[0] == "*" and all(line.startswith("!") or line == "**/__pycache__" for line in rules[1:])


def test_the_lab_guide_uses_only_flags_the_commands_have() -> None:
    """Every flag the guide gives `fedfer <verb>`, `flower-superlink` or `flower-supernode` is one
    that command's --help lists (a renamed or dropped flag fails here, not on a lab machine)."""
    guide = re.sub(r"\\\n\s*", " ", (REPO / "docs" / "how-to" / "deploy.md").read_text())  # join continued lines
    used: dict[tuple[str, ...], set[str]] = {}
    for line in guide.splitlines():
        found = re.search(r"(fedfer (?:deploy|prepare|run|lab \w+)|flower-superlink|flower-supernode)\b(.*)", line)
        if found:
            flags = re.findall(r"[\s\[`](--[a-z][a-z-]*)", found.group(2))
            used.setdefault(tuple(found.group(1).split()), set()).update(flags)
    assert {("fedfer", "lab", "certs"), ("fedfer", "lab", "nodes"), ("fedfer", "lab", "compose")} <= set(used)
    assert {("fedfer", "deploy"), ("flower-superlink",), ("flower-supernode",)} <= set(used)
    for command, flags in used.items():
        argv = ["python", "-m", "fedfer.cli", *command[1:]] if command[0] == "fedfer" else list(command)
        listed = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=120).stdout
        assert flags <= set(re.findall(r"--[a-z][a-z-]*", listed)), command
