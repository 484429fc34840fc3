"""A real Flower simulation on the tiny synthetic world: what travels, what is averaged, what stays."""

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import tomllib
from pathlib import Path

import pytest
import torch
from conftest import tiny_workspace

from fedfer import cli
from fedfer.config import TrainConfig
from fedfer.data.assets import obtain_offline_backbone
from fedfer.data.datasets import Task
from fedfer.federation.protocol import v_state, weighted_mean
from fedfer.flower.runtime import free_port
from fedfer.model.checkpoint import load_head
from fedfer.runconfig import FederationConfig, PersonalizeConfig
from fedfer.runs.options import RunOptions, options_from_args
from fedfer.runs.simulate import simulate
from fedfer.runs.study import prepare_run, run_stages


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def federated_run(tmp_path_factory, tiny_world):
    root = tmp_path_factory.mktemp("federation")
    options = RunOptions(
        world="tiny",
        workspace=tiny_workspace(root, tiny_world),  # reuses the session's rendering
        results=root / "results",
        clients=3,
        task=Task(num_classes=6, seed=0),
        federation=FederationConfig(
            num_server_rounds=2, personalize=PersonalizeConfig(max_per_class=5, p_threshold=0.3)
        ),
        ifer=TrainConfig(stage="ifer", epochs=8),
        vfer=TrainConfig(stage="vfer", epochs=6),
    )
    prepared = run_stages(options)  # everything before the federation, to fingerprint it
    frozen = {
        "f": sha256(obtain_offline_backbone().path),
        "g": sha256(prepared.ifer),
        "features": {c.clip_id: sha256(prepared.store.path(c.clip_id)) for c in prepared.clips},
    }
    run_dir = simulate(options)
    return options, prepared, run_dir, frozen


def test_two_rounds_complete_with_a_report(federated_run) -> None:
    _, _, run_dir, _ = federated_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [1, 2]
    for key in ("central_before", "personalized", "central_after"):
        assert 0.0 <= summary[key]["macro_f1"] <= 1.0 and 0.0 <= summary[key]["micro_f1"] <= 1.0
        assert len(summary[key]["f1"]) == 6
    assert len(summary["per_subject"]) == 3
    for name in ("report.md", "subject_gains.png", "confusion_personalized.png"):
        assert (run_dir / name).stat().st_size > 0


def test_a_new_run_does_not_keep_an_earlier_runs_personal_models(federated_run, tmp_path: Path) -> None:
    """A subject left out of a round's training is evaluated with its personal v() if it has one:
    that must be this run's, never one left in the run directory by an earlier run."""
    options, prepared, _, _ = federated_run
    options = dataclasses.replace(options, results=tmp_path)
    stale = tmp_path / options.run_name / "subjects" / sorted(prepared.split["test"])[0] / "personal" / "v.pt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an earlier run's personal model")
    run = prepare_run(options).run
    assert (run.subject(prepared_subjects := sorted(prepared.split["test"])[0]) / "subject.json").is_file(), (
        prepared_subjects
    )
    assert not stale.exists()


def test_no_central_eval_is_an_option_of_every_run_verb_and_reaches_the_run_config(
    federated_run, tmp_path: Path
) -> None:
    options, _, _, _ = federated_run
    for verb in ("run", "prepare", "deploy"):
        parse = cli.build_parser([verb]).parse_args
        assert options_from_args(parse([verb, "--no-central-eval"])).federation.central_eval is False
        assert options_from_args(parse([verb])).federation.central_eval is True
    with pytest.raises(SystemExit):  # a simulation flag: a deployment has no use for it
        cli.build_parser(["deploy"]).parse_args(["deploy", "--client-cpus", "2"])

    prepared = prepare_run(
        dataclasses.replace(
            options, results=tmp_path, federation=dataclasses.replace(options.federation, central_eval=False)
        )
    )

    assert tomllib.loads(prepared.run.run_config.read_text())["central-eval"] is False
    assert FederationConfig.from_run_config(prepared.values).central_eval is False


def test_aggregate_is_the_weighted_mean_of_what_clients_returned(federated_run) -> None:
    _, _prepared, run_dir, _ = federated_run
    rounds = json.loads((run_dir / "server" / "rounds.json").read_text())
    subjects = json.loads((run_dir / "subjects.json").read_text())
    last = rounds[-1]
    states, weights = [], []
    for client in last["clients"].values():
        selected = client["train"]["num-examples"]
        if selected > 0:
            subject_dir = Path(subjects[int(client["train"]["partition-id"])])
            personal, _ = load_head(subject_dir / "personal" / "v.pt", stage="vfer")  # what this client returned
            states.append(v_state(personal))
            weights.append(selected)
    assert states, "no client selected any pseudo-labelled video"
    expected = weighted_mean(states, weights)
    aggregated, _ = load_head(run_dir / "server" / f"v_round_{last['round']}.pt", stage="vfer")
    for key, tensor in v_state(aggregated).items():
        torch.testing.assert_close(tensor, expected[key], rtol=1e-5, atol=1e-6)


def test_clients_send_only_v_and_f_g_stay_untouched(federated_run) -> None:
    _, prepared, run_dir, frozen = federated_run
    rounds = json.loads((run_dir / "server" / "rounds.json").read_text())
    v_keys = sorted(v_state(load_head(prepared.vfer, stage="vfer")[0]))
    for r in rounds:
        assert r["received_arrays"] == v_keys
        assert not any("error" in c for c in r["clients"].values())
    assert sha256(prepared.ifer) == frozen["g"]
    assert sha256(obtain_offline_backbone().path) == frozen["f"]
    assert {c.clip_id: sha256(prepared.store.path(c.clip_id)) for c in prepared.clips} == frozen["features"]


def test_bytes_per_client_match_the_size_of_v(federated_run) -> None:
    _, _, run_dir, _ = federated_run
    summary = json.loads((run_dir / "summary.json").read_text())
    v_bytes = (208_838 + 2_944) * 4
    for r in summary["rounds"]:
        assert set(r["bytes_up"]) == {s["subject"] for s in summary["per_subject"]}
        for size in [*r["bytes_up"].values(), *r["bytes_down"].values()]:
            assert v_bytes < size < 1.02 * v_bytes  # v() plus message framing, nothing else


def processes_mentioning(marker: str) -> list[int]:
    """PIDs of live processes whose command line contains `marker`."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes().decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def test_the_flower_native_route_gives_the_results_of_fedfer_run(federated_run, tmp_path: Path, capsys) -> None:
    """`fedfer prepare` prints a `flwr run .` line; running it (Flower starts its own local
    SuperLink) yields the same central v() and the same report as `fedfer run` with those options."""
    options, _, run_dir, _ = federated_run
    flags = ["--world", "tiny", "--workspace", str(options.workspace), "--results", str(tmp_path / "results")]
    flags += ["--clients", "3", "--rounds", "2", "--image-size", str(options.features.image_size), "--seed", "0"]
    flags += ["-P", "5", "--p-threshold", "0.3", "--ifer-epochs", "8", "--vfer-epochs", "6"]
    assert cli.main(["prepare", *flags]) == 0
    line = next(ln.strip() for ln in capsys.readouterr().out.splitlines() if " flwr run . " in ln)
    home = tmp_path / "flwr-home"
    env = {**os.environ, "FLWR_HOME": str(home)}
    env["FLWR_LOCAL_SUPERLINK_HTTP_API_PORT"], env["FLWR_LOCAL_CONTROL_API_PORT"] = str(free_port()), str(free_port())
    try:
        result = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=600)
    finally:
        for pid in processes_mentioning(str(home)):  # Flower leaves its local SuperLink running
            os.kill(pid, signal.SIGKILL)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    native = tmp_path / "results" / options.run_name
    simulated, flower = (json.loads((d / "summary.json").read_text()) for d in (run_dir, native))
    for key in ("central_before", "personalized", "central_after"):
        assert flower[key]["confusion"] == simulated[key]["confusion"]
    ours = load_head(native / "server" / "v_round_2.pt", stage="vfer")[0].state_dict()
    theirs = load_head(run_dir / "server" / "v_round_2.pt", stage="vfer")[0].state_dict()
    for key, tensor in ours.items():
        torch.testing.assert_close(tensor, theirs[key], rtol=1e-4, atol=1e-5)


def test_the_server_app_names_the_command_that_prepares_a_run() -> None:
    with pytest.raises(ValueError, match="fedfer prepare"):
        FederationConfig.from_run_config({}).check_prepared()


def test_table_2_comes_from_the_round_1_personalization(federated_run) -> None:
    """The paper's personalized models start from the central model: round 1's, not the last round's."""
    _, _, run_dir, _ = federated_run
    rounds = json.loads((run_dir / "server" / "rounds.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    first = [c["evaluate"]["cm-personal"] for c in rounds[0]["clients"].values()]
    assert summary["personalized"]["confusion"] == torch.tensor(first).sum(0).reshape(6, 6).tolist()
    assert "personalized_round_2" in summary
