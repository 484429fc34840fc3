"""Test-wide environment: every cache, Flower home and telemetry switch points inside the repo or tmp."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from fedfer.flower.runtime import ProcessGroup

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"  # real CREMA-D fixtures (ODbL/DbCL, see tests/data/crema-d/LICENSE.txt)

# Model files (face detector, offline backbone) are fetched once into the repo-local, git-ignored
# .fedfer/ and reused by later test runs; set FEDFER_HOME to share a cache between checkouts.
os.environ.setdefault("FEDFER_HOME", str(REPO / ".fedfer"))
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Any `flwr` command a test runs outside fedfer's per-run homes still stays out of ~/.flwr.
os.environ.setdefault("FLWR_HOME", tempfile.mkdtemp(prefix="fedfer-tests-flwr-"))


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `tiny` synthetic world (seed 0), rendered once per test session through the public API;
    returns the folder holding crema_d/, affectnet/ and msp_improv/."""
    from fedfer.synth import render_world

    out = tmp_path_factory.mktemp("tiny_world")
    render_world("tiny", seed=0, out_dir=out, workers=2, progress=False)
    return out


class StartedProcesses:
    """Records every process fedfer starts (through ProcessGroup.start) while active."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pids: list[int] = []
        original = ProcessGroup.start

        def start(group: ProcessGroup, name: str, command: list[str], env) -> subprocess.Popen:
            process = original(group, name, command, env)
            self.pids.append(process.pid)
            return process

        monkeypatch.setattr(ProcessGroup, "start", start)

    def leftovers(self, marker: Path, grace: float = 30.0) -> list[str]:
        """Live processes that we started, that belong to their process groups (ClientApps, the
        ServerApp), or whose command line names `marker` (this test's directory), once they had
        `grace` seconds to go: Flower's flower-superexec leaves when its parent-pid monitor sees the
        SuperLink gone, which takes seconds on a busy machine."""
        deadline = time.monotonic() + grace
        while (found := live_processes(marker, self.pids)) and time.monotonic() < deadline:
            time.sleep(0.5)
        return found


def live_processes(marker: Path, pids: list[int] | tuple[int, ...] = ()) -> list[str]:
    """Live processes (not zombies) among `pids`, in their process groups, or whose command line names `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        if fields[0] == "Z":
            continue
        if int(entry.name) in pids or int(fields[2]) in pids or str(marker) in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def tiny_workspace(root: Path, tiny_world: Path) -> Path:
    """A workspace under `root` whose `tiny` world (seed 0) is the session's rendering, linked, not redone."""
    from fedfer.synth.presets import WORLD_VERSION

    workspace = root / "data"
    (workspace / "worlds").mkdir(parents=True)
    (workspace / "worlds" / f"tiny-s0-v{WORLD_VERSION}").symlink_to(tiny_world)
    return workspace


@pytest.fixture(scope="session")
def prepared_tiny(tmp_path_factory: pytest.TempPathFactory, tiny_world: Path) -> Path:
    """A prepared tiny-world run (g(), central v(), 3 labelled test subjects, briefly trained): the
    starting point of a federation that needs no particular accuracy (crowd and cluster tests)."""
    from fedfer.config import FeatureConfig, TrainConfig
    from fedfer.data.datasets import Task
    from fedfer.runconfig import FederationConfig, PersonalizeConfig
    from fedfer.runs.options import RunOptions
    from fedfer.runs.study import prepare_run

    root = tmp_path_factory.mktemp("prepared_tiny")
    options = RunOptions(
        world="tiny",
        workspace=tiny_workspace(root, tiny_world),
        results=root / "results",
        clients=3,
        task=Task(num_classes=6, seed=0),
        federation=FederationConfig(personalize=PersonalizeConfig(max_per_class=5, p_threshold=0.3)),
        ifer=TrainConfig(stage="ifer", epochs=4),
        vfer=TrainConfig(stage="vfer", epochs=3),
        features=FeatureConfig(image_size=112),  # f() 4x faster than at 224 px; these tests are about systems
    )
    return prepare_run(options).run.root


@pytest.fixture(scope="session")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The suite's prepared run without any world (`fedfer.testing.build_fake_run`: 3 subjects, 2 rounds),
    shared by the deployment and communication tests so that their runs can be compared."""
    from fedfer.testing import build_fake_run

    return build_fake_run(tmp_path_factory.mktemp("fake_run"))


@pytest.fixture(scope="session")
def codec_runs(fake_run: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One round of the fake run once per codec (v() packed into one array per message), and once in
    float32 with one array per tensor, from the same central model: real Flower simulations. Returns
    {codec or "unpacked": RunDir}."""
    from fedfer.config import CODECS
    from fedfer.rundir import RunDir
    from fedfer.runs.simulate import simulate_prepared

    root = tmp_path_factory.mktemp("codecs")
    values = {**fake_run, "num-server-rounds": 1}
    runs = {}
    for name, codec, packed in [*((c, c, True) for c in CODECS), ("unpacked", "float32", False)]:
        run = RunDir(root / name)
        simulate_prepared(
            run.root,
            {**values, "run-dir": str(run.root), "codec-up": codec, "codec-down": codec, "pack-arrays": packed},
        )
        runs[name] = run
    return runs
