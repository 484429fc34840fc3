"""The paper's grid: statistics, vote-distribution labels with KL, the two protocols, Flower's FedAvg
in the in-process rounds, and `simulations/grid.py` end to end on the tiny world."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, tiny_workspace

from fedfer.config import TrainConfig
from fedfer.evaluation.stats import mean_ci, paired_gains
from fedfer.federation.protocol import v_state, weighted_mean
from fedfer.model.heads import VFERHead
from fedfer.model.inference import predict_proba
from fedfer.model.soft_labels import DistributionKL, vote_distribution
from fedfer.model.training import LabelledSet, fit, mean_loss
from fedfer.paper.adaptation import UNLABELLED, fedavg, run_rounds, simulated_labels, subject_view
from fedfer.runconfig import PersonalizeConfig


def test_mean_ci_is_the_student_t_interval() -> None:
    ci = mean_ci([0.1, 0.2, 0.3])  # sd 0.1, t(0.975, 2) = 4.3027
    assert ci.mean == pytest.approx(0.2)
    assert ci.half_width == pytest.approx(4.3027 * 0.1 / np.sqrt(3), rel=1e-4)
    assert ci.format() == "20.0 ± 24.8"
    assert mean_ci([0.5]).format() == "50.0"


def test_paired_gains_count_and_test_only_the_subjects_that_moved() -> None:
    before = [0.5] * 8
    after = [0.6, 0.7, 0.54, 0.52, 0.8, 0.61, 0.5, 0.5]  # six gains, two untouched subjects
    g = paired_gains(before, after, threshold=1e-9)
    assert g.tally() == "6 / 2 / 0"
    assert g.p_value == pytest.approx(2 / 2**6)  # exact two-sided Wilcoxon: all six signs positive
    worse = paired_gains(after, before, threshold=0.05)
    assert (worse.improved, worse.unchanged, worse.worse) == (0, 4, 4)
    with pytest.raises(ValueError, match="equally long"):
        paired_gains([0.1], [0.1, 0.2])


def test_vote_distribution_is_a_softmax_with_zero_vote_classes_masked() -> None:
    target = vote_distribution([0, 3, 5, 0])
    e3, e5 = np.exp(3.0), np.exp(5.0)
    np.testing.assert_allclose(target, [0, e3 / (e3 + e5), e5 / (e3 + e5), 0], rtol=1e-6)
    assert target[0] == 0 and target[3] == 0
    with pytest.raises(ValueError, match="no vote distribution"):
        vote_distribution([0, 0, 0, 0])


def test_v_trains_on_distributions_with_the_kl_divergence() -> None:
    rng = np.random.default_rng(0)
    clips = [rng.normal(size=(int(rng.integers(4, 9)), 1280)).astype(np.float32) + (i % 2) for i in range(24)]
    targets = np.stack([vote_distribution([4, 1, 0, 0] if i % 2 else [0, 0, 2, 5]) for i in range(24)])
    data = LabelledSet(clips, targets)
    assert data.labels.dtype == np.float32 and data.labels.shape == (24, 4)
    torch.manual_seed(0)
    v = VFERHead(4)
    before = mean_loss(v, data, DistributionKL(), 8)
    fit(v, data, None, TrainConfig(stage="vfer", num_classes=4, epochs=15, lr=1e-3, batch_size=8), progress=False)
    after = mean_loss(v, data, DistributionKL(), 8)
    assert after < 0.5 * before
    probs = predict_proba(v, clips)
    assert (probs[1::2].argmax(1) == 0).all() and (probs[::2].argmax(1) == 3).all()


def test_protocols_transductive_reuses_clips_held_out_halves_them() -> None:
    clips = [np.full((5, 1280), i, dtype=np.float32) for i in range(10)]
    truth = np.array([0, 0, 1, 1, 1, 1, 2, 2, UNLABELLED, UNLABELLED])
    same = subject_view("1001", clips, truth, "transductive", seed=0)
    assert len(same.adapt) == 10 and len(same.test) == 8 and (same.test_truth != UNLABELLED).all()
    held = subject_view("1001", clips, truth, "held-out", seed=0)
    adapt_ids = {int(c[0, 0]) for c in held.adapt}
    test_ids = {int(c[0, 0]) for c in held.test}
    assert not adapt_ids & test_ids  # never adapted and scored on the same clip
    assert len(adapt_ids) == 5 and len(test_ids) == 4  # half of each label, the unlabelled half not scored
    assert sorted(held.test_truth.tolist()) == sorted(truth[sorted(test_ids)].tolist())
    with pytest.raises(ValueError, match="protocol"):
        subject_view("1001", clips, truth, "leave-one-out", seed=0)


def test_simulated_labeller_has_the_asked_precision() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 6, size=20000)
    labels = simulated_labels(truth, 6, 0.7, rng)
    assert (labels == truth).mean() == pytest.approx(0.7, abs=0.01)
    assert labels.min() >= 0 and labels.max() <= 5


def test_rounds_use_flowers_fedavg_weighted_by_selected_videos() -> None:
    rng = np.random.default_rng(2)
    states = []
    for seed in range(3):
        torch.manual_seed(seed)
        states.append(v_state(VFERHead(4)))
    replies = [(states[0], 5), (states[1], 0), (states[2], 15)]  # the second subject selected nothing
    averaged = fedavg(replies, states[0])
    expected = weighted_mean([states[0], states[2]], [5, 15])
    for key in expected:
        torch.testing.assert_close(averaged[key], expected[key], rtol=1e-6, atol=1e-7)
    assert fedavg([(states[1], 0)], states[0]) is states[0]
    # Rounds on real v()s: a subject whose pseudo labels all fall below the threshold changes nothing.
    central = VFERHead(4).eval()
    subjects = [
        subject_view(
            str(i),
            [rng.normal(size=(6, 1280)).astype(np.float32) for _ in range(8)],
            np.arange(8) % 4,
            "transductive",
            0,
        )
        for i in range(2)
    ]
    confident = np.eye(4)[np.arange(8) % 4] * 0.9 + 0.025
    unsure = np.full((8, 4), 0.25)
    config = PersonalizeConfig(max_per_class=2, p_threshold=0.5, epochs=1)
    first, last = run_rounds(central, subjects, [confident, unsure], config, rounds=2)
    assert first.selected == [8, 0]
    for key, tensor in v_state(first.models[1]).items():
        torch.testing.assert_close(tensor, v_state(central)[key])
    for key, tensor in first.state.items():  # only the first subject trained: the average is its model
        torch.testing.assert_close(tensor, v_state(first.models[0])[key], rtol=1e-6, atol=1e-6)
    assert any(not torch.equal(last.state[k], first.state[k]) for k in first.state)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory, tiny_world) -> Path:
    root = tmp_path_factory.mktemp("grid")
    workspace = tiny_workspace(root, tiny_world)
    out = root / "grid"
    command = [
        sys.executable, str(REPO / "simulations" / "grid.py"), "--world", "tiny", "--workspace", str(workspace),
        "--image-size", "96", "--ifer-epochs", "6", "--vfer-epochs", "4", "--max-per-class", "5",
        "--p-threshold", "0.3", "--seeds", "0", "1",
        "--tables", "table2", "seed002", "table3-heldout", "table5",
        "--sweeps", "rounds", "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_grid_writes_every_table_with_intervals_baselines_and_paper_numbers(grid_run: Path) -> None:
    report = (grid_run / "report.md").read_text()
    results = json.loads((grid_run / "grid.json").read_text())
    assert set(results["tables"]) == {"table2", "seed002", "table3-heldout", "table5"}
    for key, seeds in results["tables"].items():
        assert [s["seed"] for s in seeds] == [0, 1]
        models = {"central", "frame_mean_g", "personalized", "local_only", "fedper", "after_fedavg", "oracle"}
        assert models <= set(seeds[0]["pooled"])
        assert f"## {key}:" in report
        assert (grid_run / f"figure3_{key}.png").stat().st_size > 1000
    assert {"labeller_50", "labeller_70", "labeller_90"} <= set(results["tables"]["table2"][0]["pooled"])
    assert "56.0 / 59.5" in report and "44.3 / 52.6" in report and "60.4 / 63.3" in report
    assert " ± " in report and "Wilcoxon p" in report and "unchanged: |gain| ≤ 1e-09" in report
    assert "Protocol **held-out**" in report and "Protocol **transductive**" in report
    # Table 5 personalizes all 12 MSP-IMPROV actors; Table 3 its 4 test actors; seed 002 has its own budget.
    assert len(results["tables"]["table5"][0]["subjects"]) == 12
    # Held out, a test actor needs two clips to split; the tiny world leaves one of the 4 with a single clip.
    assert len(results["tables"]["table3-heldout"][0]["subjects"]) == 3
    assert results["tables"]["seed002"][0]["settings"]["lr"] == 1e-5
    assert results["tables"]["table3-heldout"][0]["settings"]["P"] == 50
    assert [p["value"] for p in results["sweeps"]["rounds"]] == [1, 2, 3]
    assert (grid_run / "sweep_rounds.png").is_file() and (grid_run / "precision_vs_gain.png").is_file()


def test_grid_tables_agree_with_their_own_per_subject_scores(grid_run: Path) -> None:
    results = json.loads((grid_run / "grid.json").read_text())
    for seeds in results["tables"].values():
        for s in seeds:
            n = len(s["subjects"])
            assert all(len(v) == n for v in s["per_subject"].values())
            assert 0 <= s["pseudo_precision_pooled"] <= 1
            for model, report in s["pooled"].items():
                assert sum(report["support"]) == s["pooled"]["central"]["n"], model
            # A subject that selected no video keeps the central model in round 1.
            for i, selected in enumerate(s["selected"]):
                if selected == 0:
                    assert s["per_subject"]["personalized"][i] == s["per_subject"]["central"][i]
