"""Every study and benchmark under simulations/ answers --help and finishes a small run of its own.

Each script runs as a user runs it (`python simulations/<script>.py …`, a fresh process), on the
session's tiny world and its prepared run (conftest), with the smallest settings that still go
through all of its code: one seed, one round, two or three clients, 112 px features. The runs that
federate are real Flower simulations or deployments, so they take tens of seconds, not minutes.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA, REPO, live_processes

from fedfer.publish.result_tables import tables_of

SIMULATIONS = REPO / "simulations"
HELPERS = {"study_args.py", "comm_report.py"}  # modules the scripts import, not scripts themselves
SCRIPTS = sorted(p.name for p in SIMULATIONS.glob("*.py") if p.name not in HELPERS)


def no_processes_left(cwd: Path) -> bool:
    """Whether every process that named `cwd` (a run's SuperLink, SuperNodes, apps) has stopped."""
    return live_processes(cwd) == []


def run(script: str, *args: str | Path, cwd: Path) -> str:
    """`python simulations/<script> args…` in `cwd`; its output, or a failure showing it."""
    result = subprocess.run(
        [sys.executable, str(SIMULATIONS / script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (
        f"{script} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def test_every_module_is_a_script_or_a_named_helper_and_none_uses_the_cli_layer() -> None:
    for path in SIMULATIONS.glob("*.py"):
        tree = ast.parse(path.read_text())
        is_script = any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)
        assert is_script != (path.name in HELPERS), path.name
        imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }
        assert not {m for m in imported if m.startswith(("fedfer.commands", "fedfer.cli"))}, path.name


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_answers_help(script: str, tmp_path: Path) -> None:
    assert "usage:" in run(script, "--help", cwd=tmp_path)


@pytest.fixture(scope="module")
def world(prepared_tiny: Path) -> list[str]:
    """Flags that reuse the prepared tiny run's workspace: its world, 112 px features and central heads."""
    workspace = prepared_tiny.parents[1] / "data"
    return ["--world", "tiny", "--workspace", str(workspace), "--image-size", "112"] + [
        "--ifer-epochs",
        "4",
        "--vfer-epochs",
        "3",
    ]


@pytest.fixture(scope="module")
def federated(world: list[str]) -> list[str]:
    """`world` plus the smallest federation: 2 clients, 1 round, settings that select some videos."""
    return [*world, "--clients", "2", "--rounds", "1", "--max-per-class", "5", "--p-threshold", "0.3"]


def test_study_crema_d_labels(tmp_path: Path) -> None:
    run("study_crema_d_labels.py", DATA / "crema-d", "--out", tmp_path / "labels.json", cwd=tmp_path)
    assert json.loads((tmp_path / "labels.json").read_text())


def test_study_world(tiny_world: Path, tmp_path: Path) -> None:
    out = run("study_world.py", "--preset", "tiny", "--out", tiny_world, "--no-detection", cwd=tmp_path)
    assert "face plurality = intended" in out
    assert "face plurality = intended" in run("study_world.py", "--preset", "tiny", "--plan-only", cwd=tmp_path)


def test_study_central(world: list[str], tmp_path: Path) -> None:
    run("study_central.py", *world, "--out", tmp_path / "central.json", cwd=tmp_path)
    (row,) = json.loads((tmp_path / "central.json").read_text())
    assert 0 <= row["vfer"]["macro_f1"] <= 1


def test_bench_backbone_probe(world: list[str], tmp_path: Path) -> None:
    run("bench_backbone_probe.py", *world, "--frames-per-clip", "2", "--out", tmp_path / "probe.json", cwd=tmp_path)
    assert set(json.loads((tmp_path / "probe.json").read_text())) >= {"stills_f", "stills_pixels", "video_frames_f"}


def test_study_personalization(world: list[str], tmp_path: Path) -> None:
    flags = ["--oracle-epochs", "1", "--frame-epochs", "1", "--out", tmp_path / "study"]
    run("study_personalization.py", *world, "--max-per-class", "5", "--p-threshold", "0.3", *flags, cwd=tmp_path)
    summary = json.loads((tmp_path / "study" / "summary.json").read_text())
    assert summary["settings"]["P"] == 5 and "oracle_v_1ep" in summary["pooled"]


def test_study_teachers(world: list[str], tmp_path: Path) -> None:
    run("study_teachers.py", *world, "--seeds", "0", "--frames-epochs", "1", "--out", tmp_path / "t.md", cwd=tmp_path)
    assert "crema-frames (peak)" in json.loads((tmp_path / "t.json").read_text())
    published = tables_of(json.loads((tmp_path / "teachers-published.json").read_text()))
    columns, rows, stamp = published["selection"]
    assert columns == ["teacher", "ANG", "DIS", "FEA", "HAP", "NEU", "SAD", "all", "selected / seed"] + [
        "frame-mean macro F1 (all test clips)"
    ]
    assert "crema-frames, 8 frames nearest the peak" in [row[0] for row in rows] and stamp["world_version"]


def test_grid(world: list[str], tmp_path: Path) -> None:
    run("grid.py", *world, "--tables", "table2", "--seeds", "0", "--sweeps", "--out", tmp_path / "grid", cwd=tmp_path)
    assert "table2" in json.loads((tmp_path / "grid" / "grid.json").read_text())["tables"]
    published = tables_of(json.loads((tmp_path / "grid" / "published.json").read_text()))
    columns, rows, stamp = published["summary"]
    assert columns[2] == "central"
    assert rows[0][:2] == ["table2", "transductive"] and rows[0][-1] == "56.0 → 58.8 / 57.1"
    assert published["paired"][1][0][0] == "table2" and stamp["world_version"] and "sweeps" not in published


def test_study_effect(federated: list[str], tmp_path: Path) -> None:
    """Two methods, then a third added to the same unit without recomputing the first two."""
    flags = ["--world-seeds", "0", "--splits", "0", "--out", tmp_path / "effect", "--methods", "paper", "em"]
    run("study_effect.py", *federated, *flags, cwd=tmp_path)
    result = json.loads((tmp_path / "effect" / "effect.json").read_text())
    assert set(result["methods"]) == {"paper", "em"} and (tmp_path / "effect" / "effect.png").stat().st_size > 0
    unit = tmp_path / "effect" / "units" / "w0-s0.json"
    first = json.loads(unit.read_text())
    run("study_effect.py", *federated, *flags, "proto-5", "baseline", cwd=tmp_path)
    grown = json.loads(unit.read_text())
    assert set(grown["client_seconds_per_round"]) == {"paper", "em", "proto-5", "baseline"}
    assert grown["client_seconds_per_round"]["paper"] == first["client_seconds_per_round"]["paper"]  # kept
    methods = json.loads((tmp_path / "effect" / "effect.json").read_text())["methods"]
    assert set(methods) == {"paper", "em", "proto-5", "baseline"}
    assert methods["proto-5"]["labelled_clips"] == 30 and methods["paper"]["labelled_clips"] == 0  # 5 × 6 classes
    assert methods["proto-5"]["bytes_per_round"] == methods["paper"]["bytes_per_round"] == grown["v_bytes"]


def test_profile_crowd_node(prepared_tiny: Path, tmp_path: Path) -> None:
    assert "| stage | seconds | share |" in run(
        "profile_crowd_node.py", "--prepared", prepared_tiny, "--subjects", "2", cwd=tmp_path
    )


def test_bench_features(tmp_path: Path) -> None:
    flags = ["--stages", "none", "--sizes", "112", "--batches", "4", "--seconds", "0.05", "--threads", "1"]
    run("bench_features.py", *flags, "--out", tmp_path / "features.json", cwd=tmp_path)
    assert json.loads((tmp_path / "features.json").read_text())


def test_bench_predict(tmp_path: Path) -> None:
    flags = ["--threads", "1", "--passes", "1", "--image-size", "112", "--out", tmp_path / "predict.json"]
    run("bench_predict.py", *flags, cwd=tmp_path)
    assert json.loads((tmp_path / "predict.json").read_text())


def test_glimpse_real_clips(world: list[str], tmp_path: Path) -> None:
    assert "1001_DFA_ANG_XX.flv" in run("glimpse_real_clips.py", *world, cwd=tmp_path)
    run("glimpse_real_clips.py", "--onset", "--out", tmp_path, cwd=tmp_path)
    table = json.loads((tmp_path / "onset.json").read_text())["tables"]["onset"]
    assert [row[1] for row in table["rows"]] == ["ANG", "HAP", "NEU"] and len(table["columns"]) == 13


def test_republish_runs_a_study_and_copies_its_docs_tables(tmp_path: Path) -> None:
    plan = run("republish.py", "--dry-run", cwd=tmp_path)
    assert "study_effect.py --world-seeds 200" in plan and "expected on 2 cores" in plan
    flags = ["--only", "onset", "--workdir", tmp_path, "--results", tmp_path / "docs-results", "--no-paste"]
    run("republish.py", *flags, cwd=tmp_path)
    assert tables_of(json.loads((tmp_path / "docs-results" / "onset.json").read_text()))["onset"][1]


def test_study_seeds(federated: list[str], tmp_path: Path) -> None:
    flags = ["--seeds", "0", "--results", tmp_path / "runs", "--out", tmp_path / "seeds.md"]
    run("study_seeds.py", *federated, *flags, cwd=tmp_path)
    assert "0" in json.loads((tmp_path / "seeds.json").read_text())["default teacher, BatchNorm keras"]
    assert no_processes_left(tmp_path)


def test_study_dp(federated: list[str], tmp_path: Path) -> None:
    flags = ["--noise", "0.3", "--results", tmp_path / "runs", "--out", tmp_path / "dp.md"]
    run("study_dp.py", *federated, *flags, cwd=tmp_path)
    assert set(json.loads((tmp_path / "dp.json").read_text())) == {"no DP", "z = 0.3"}
    columns, rows, stamp = tables_of(json.loads((tmp_path / "dp-published.json").read_text()))["noise"]
    assert columns == ["setting", "ε (δ = 10⁻³, 1 round)", "central before", "central after FedAvg"] + [
        "personalized (round 1)"
    ]
    assert [row[0] for row in rows] == ["no DP (weighted FedAvg)", "z = 0.3"] and stamp["world_version"]
    assert no_processes_left(tmp_path)


def test_study_poisoning(federated: list[str], tmp_path: Path) -> None:
    flags = ["--settings", "2:1", "--attacks", "scale100", "--options", "validated FedAvg"]
    run(
        "study_poisoning.py",
        *federated,
        *flags,
        "--results",
        tmp_path / "runs",
        "--out",
        tmp_path / "p.md",
        cwd=tmp_path,
    )
    assert len(json.loads((tmp_path / "p.json").read_text())) == 2  # the clean run and the attacked one
    columns, rows, stamp = tables_of(json.loads((tmp_path / "poisoning-published.json").read_text()))["attacks"]
    assert columns == ["clients (hostile)", "attack", "aggregation", "central before", "central after FedAvg"] + [
        "personalized (round 1)",
        "personalized (round 2)",
    ]
    assert [row[:3] for row in rows] == [
        ["2 (0)", "clean", "FedAvg (clean run)"],
        ["2 (1)", "scale100", "validated FedAvg"],
    ]
    assert stamp["world_version"]
    assert no_processes_left(tmp_path)


def test_bench_comm(world: list[str], tmp_path: Path) -> None:
    flags = ["--parts", "codecs", "--seeds", "0", "--codecs", "float16", "--rounds", "1", "--out", tmp_path / "comm"]
    run("bench_comm.py", *world, *flags, cwd=tmp_path)  # every test actor of the tiny world: 3
    assert "float16/seed0" in json.loads((tmp_path / "comm" / "communication.json").read_text())["codecs"]
    assert (tmp_path / "comm" / "communication.png").stat().st_size > 0
    published = tables_of(json.loads((tmp_path / "comm" / "published.json").read_text()))
    assert set(published) == {"codecs", "payloads"}  # no growth part measured; v's payload rows come with codecs
    columns, rows, stamp = published["codecs"]
    assert columns == ["codec", "up bytes", "down bytes", "× float32", "s/round"] + [
        "central before macro / weighted F1",
        "personalized (r1) macro / weighted F1",
        "central after macro / weighted F1",
        "Δ vs float32, same seeds: personalized / central after (macro; weighted)",
    ]
    assert rows[0][0] == "float16" and rows[0][3] == rows[0][-1] == "–"  # no float32 run to compare with
    assert stamp["world_version"] and stamp["settings"]["seeds"] == "0"
    columns, rows, stamp = published["payloads"]
    assert columns == ["payload", "codec", "up bytes", "down bytes", "s/round", "clients"]
    assert rows[0][:2] == ["v", "float16"] and stamp["world_version"]
    assert no_processes_left(tmp_path)


def test_bench_scale(prepared_tiny: Path, tmp_path: Path) -> None:
    flags = ["--sizes", "4", "--fractions", "1.0", "--subjects-per-node", "2", "--rounds", "1", "--apps", "fedfer"]
    run("bench_scale.py", "--prepared", prepared_tiny, *flags, "--out", tmp_path / "scale", cwd=tmp_path)
    assert "fedfer" in (tmp_path / "scale.md").read_text()
    assert no_processes_left(tmp_path)


def test_bench_deploy_and_its_timeline(tmp_path: Path) -> None:
    """One insecure deployment with forked ClientApps, its timeline read back by deploy_timeline.py."""
    flags = ["--modes", "forked", "--rounds", "1", "--insecure", "--timeline", "--out", tmp_path / "deploy"]
    out = run("bench_deploy.py", *flags, cwd=tmp_path)
    assert "deployment, forked ClientApps (insecure)" in out
    assert "notice" in run("deploy_timeline.py", tmp_path / "deploy" / "forked-packed", cwd=tmp_path)
    assert no_processes_left(tmp_path)


def test_bench_node_memory(tmp_path: Path) -> None:
    assert "SuperNode" in run("bench_node_memory.py", "--clients", "1", "--clips", "4", cwd=tmp_path)
    assert no_processes_left(tmp_path)
