"""The seed-002 variant as options of the Flower apps: the held-out protocol in a real Flower run on
the tiny world, and a central v() trained on vote distributions by the run's stages."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fedfer import cli
from fedfer.data.splits import protocol_positions
from fedfer.data.subject import load_subject, personal_checkpoint, read_subjects_file
from fedfer.federation.protocol import CM_PERSONAL
from fedfer.model.checkpoint import load_state
from fedfer.runconfig import FederationConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions, options_from_args
from fedfer.runs.records import client_evaluations
from fedfer.runs.simulate import simulate_prepared
from fedfer.runs.study import prepare_run
from fedfer.stages.sets import distribution_sequences, vote_clips


def prepared_options(prepared: Path) -> RunOptions:
    """The RunOptions the prepared tiny run was made with (conftest's `prepared_tiny`)."""
    from fedfer.config import FeatureConfig, TrainConfig
    from fedfer.data.datasets import Task

    o = json.loads(RunDir(prepared).options_file.read_text())
    return RunOptions(
        world=o["world"],
        workspace=Path(o["workspace"]),
        results=Path(o["results"]),
        clients=o["clients"],
        task=Task(**o["task"]),
        ifer=TrainConfig(**o["ifer"]),
        vfer=TrainConfig(**o["vfer"]),
        features=FeatureConfig(**o["features"]),
        federation=FederationConfig.from_run_config(tomllib.loads(RunDir(prepared).run_config.read_text())),
    )


def test_the_variant_is_an_option_of_every_run_verb() -> None:
    for verb in ("run", "prepare", "deploy"):
        flags = [verb, "--protocol", "held-out", "--central-labels", "distribution"]
        options = options_from_args(cli.build_parser([verb]).parse_args(flags))
        assert (options.federation.protocol, options.federation.central_labels) == ("held-out", "distribution")
        default = options_from_args(cli.build_parser([verb]).parse_args([verb]))
        assert (default.federation.protocol, default.federation.central_labels) == ("transductive", "hard")
    with pytest.raises(ValueError, match="protocol = 'leave-one-out'"):
        FederationConfig.from_run_config({"protocol": "leave-one-out"})


def test_the_held_out_protocol_adapts_on_one_half_and_scores_only_the_other(
    prepared_tiny: Path, tmp_path: Path
) -> None:
    values = tomllib.loads(RunDir(prepared_tiny).run_config.read_text())
    run = RunDir(tmp_path / "held-out")
    values.update({"run-dir": str(run.root), "protocol": "held-out", "num-server-rounds": 1, "p-threshold": 0.0})
    simulate_prepared(run.root, values)

    seed = FederationConfig.from_run_config(values).personalize.seed
    central = json.loads(run.central_eval(0).read_text())["per_subject"]
    subjects = [d.name for d in read_subjects_file(Path(values["subjects-file"]))]
    personal = client_evaluations(json.loads(run.rounds.read_text()), subjects)[1]
    assert personal  # the clients scored their personalized v()
    total = 0
    for directory in read_subjects_file(Path(values["subjects-file"])):
        data = load_subject(directory)
        adapt, scored = protocol_positions(data.labels, "held-out", seed, data.subject)
        assert len(adapt) and len(scored) and not set(adapt) & set(scored)
        assert len(scored) < len(data.labelled)  # the adaptation half is never scored
        # The server scored the central v() on the held-out half only ...
        assert np.asarray(central[data.subject]).sum() == len(scored)
        # ... and the client adapted on the other half: every pseudo label is one of its adaptation clips.
        with np.load(personal_checkpoint(directory).with_name("pseudo.npz")) as p:
            assert len(p["indices"]) and set(p["indices"].tolist()) <= set(adapt.tolist())
        if data.subject in personal:
            assert np.asarray(personal[data.subject][CM_PERSONAL]).sum() == len(scored)
        total += len(scored)

    summary = json.loads(run.summary.read_text())
    assert summary["protocol"] == "held-out" and summary["central_labels"] == "hard"
    assert summary["personalized"]["n"] == summary["central_before"]["n"] == total
    assert "Protocol: **held-out**" in run.report.read_text()


def test_the_central_v_can_learn_vote_distributions(prepared_tiny: Path, tmp_path: Path) -> None:
    options = prepared_options(prepared_tiny)
    options = replace(options, results=tmp_path, federation=replace(options.federation, central_labels="distribution"))
    prepared = prepare_run(options)
    hard = json.loads(RunDir(prepared_tiny).options_file.read_text())["central_checkpoint"]
    assert Path(prepared.prepared.vfer).name.startswith("vfer-distribution-") and str(prepared.prepared.vfer) != hard
    assert prepared.values["central-labels"] == "distribution"
    # v() learned from the clips' vote distributions: (N, K) targets, each a distribution.
    p = prepared.prepared
    voted = vote_clips(p.world, p.task, p.task.label_mode, [c.clip_id for c in p.clips])
    targets = distribution_sequences(p.store, voted, p.split["train"]).labels
    assert targets.ndim == 2 and targets.shape[1] == len(p.task.classes)
    assert np.allclose(targets.sum(1), 1) and (targets < 1).any()
    history = load_state(p.vfer)["card"]["history"]
    assert history["train_loss"] and np.isfinite(history["train_loss"]).all()
    with pytest.raises(ValueError, match="--labels av or face"):
        vote_clips(p.world, p.task, "intended", [])
