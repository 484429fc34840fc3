"""What leaves a client, audited in real Flower runs, and differential privacy as a run option.

The runs are prepared without any world (`fedfer.testing.build_fake_run`, 3 subjects, 2 rounds) and
simulated by Flower's real runtime; every client writes a description of each reply it sends
(`audit-dir`), which the tests compare with what they expect v() and the documented counts to be.
"""

import json
import math
from pathlib import Path

import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from fedfer import cli
from fedfer.federation.audit import audit_mod
from fedfer.federation.protocol import v_state
from fedfer.model.checkpoint import load_head
from fedfer.model.heads import VFERHead
from fedfer.runconfig import DEFAULT_DP_CLIPPING_NORM, FederationConfig, PrivacyConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import options_from_args
from fedfer.runs.report import write_report
from fedfer.runs.simulate import simulate_prepared
from fedfer.testing import build_fake_run

V_PACKED = {"arrays/packed": [sum(t.numel() for t in v_state(VFERHead(6)).values())]}  # v() as one array
TRAIN_METRICS = {"metrics/num-examples": 1, "metrics/partition-id": 1, "metrics/train-loss": 1}
LABEL_COUNTS = {"metrics/num-labelled": 1, "metrics/cm-personal": 36, "metrics/cm-pseudo": 36}


def audited_run(root: Path, **overrides) -> tuple[RunDir, list[dict], dict]:
    values = build_fake_run(root / "prepared", num_subjects=3)
    run = RunDir(root / "run")
    # p-threshold 0.2: every subject selects videos (the fake g() is unsure) and sends a real update.
    values = {**values, "run-dir": str(run.root), "audit-dir": str(root / "audit"), "p-threshold": 0.2, **overrides}
    simulate_prepared(run.root, values)
    records = [json.loads(p.read_text()) for p in sorted((root / "audit").glob("*.json"))]
    return run, records, values


def test_without_client_eval_clients_send_v_and_three_counts_and_nothing_label_derived(tmp_path: Path) -> None:
    run, records, values = audited_run(tmp_path, **{"client-eval": False})

    assert len(records) == 3 * 2  # 3 clients × 2 rounds, train only: no evaluation was asked for
    for r in records:
        assert r["type"] == "train" and r["error"] is None and r["refused"] == []
        assert r["records"] == {"arrays": "ArrayRecord", "metrics": "MetricRecord"}
        assert {k: a["shape"] for k, a in r["arrays"].items()} == V_PACKED
        assert r["metrics"] == TRAIN_METRICS and r["configs"] == []
        assert 800_000 < r["bytes"] < 900_000  # v()'s 211,782 float32 values and the counts
    assert sorted((r["node"], r["round"]) for r in records) == sorted({(r["node"], k) for r in records for k in (1, 2)})
    rounds = json.loads(run.rounds.read_text())
    assert not any("evaluate" in c for r in rounds for c in r["clients"].values())
    assert all(c["train"]["num-examples"] > 0 for r in rounds for c in r["clients"].values())  # real updates

    summary = write_report(run.root, {"mode": "simulation"}, subjects_file=Path(values["subjects-file"]))
    assert "central_after" in summary and "personalized" not in summary  # the server's scores remain


def test_dp_clips_each_update_and_adds_the_calibrated_noise(tmp_path: Path) -> None:
    z, clip = 1.0, 1e-3
    run, records, _ = audited_run(tmp_path, **{"dp-noise-multiplier": z, "dp-clipping-norm": clip})

    before = v_state(load_head(run.central_checkpoint(0), stage="vfer")[0])
    after = v_state(load_head(run.central_checkpoint(1), stage="vfer")[0])
    change = math.sqrt(sum(((after[k].double() - before[k].double()) ** 2).sum().item() for k in before))
    dims = sum(t.numel() for t in before.values())
    noise = z * clip / 3 * math.sqrt(dims)  # ‖N(0, σ² I_d)‖ ≈ σ √d, σ = z C / sampled clients
    # The mean of updates clipped to C = 0.001 adds at most 0.001; unclipped ones (norm > 0.03) would not fit.
    assert abs(change - noise) < 0.01 * noise, (change, noise)
    rounds = json.loads(run.rounds.read_text())
    assert all(c["train"]["num-examples"] > 0 for r in rounds for c in r["clients"].values())  # real updates
    log = run.flower_log.read_text()
    assert "central DP noise" in log  # Flower's wrapper says so in the ServerApp's log

    # The study asked for the label-derived counts (client-eval on): they ride in the train replies.
    assert len(records) == 3 * 2 and all(r["type"] == "train" and r["refused"] == [] for r in records)
    assert all(r["metrics"] == {**TRAIN_METRICS, **LABEL_COUNTS} for r in records)
    assert all("evaluate" in c for r in rounds for c in r["clients"].values())  # filed as each round's scores


def test_noise_never_leaves_a_batchnorm_variance_negative(tmp_path: Path) -> None:
    """σ = z C / 3 = 1/3 per value: the noise drives some running variances below 0, where v()'s
    normalisation would be NaN; the server floors them at 0 in the average it releases."""
    run, _, _ = audited_run(tmp_path, **{"dp-noise-multiplier": 1.0, "dp-clipping-norm": 1.0})
    for round_ in (1, 2):
        state = v_state(load_head(run.central_checkpoint(round_), stage="vfer")[0])
        variances = torch.cat([t.flatten() for k, t in state.items() if k.endswith("running_var")])
        assert (variances >= 0).all() and (variances == 0).any(), round_  # floored, and the floor was needed
        others = [t for k, t in state.items() if not k.endswith("running_var") and t.is_floating_point()]
        assert any((t < 0).any() for t in others)  # only the variances are floored


def test_a_separate_evaluate_exchange_sends_the_same_counts(tmp_path: Path) -> None:
    """scores-in-train off: the counts leave in evaluate replies of their own, and are the same."""
    inline, _, _ = audited_run(tmp_path / "inline")
    run, records, _ = audited_run(tmp_path / "separate", **{"scores-in-train": False})

    evaluations = [r for r in records if r["type"] == "evaluate"]
    assert len(evaluations) == 3 * 2
    for r in evaluations:
        assert r["records"] == {"metrics": "MetricRecord"} and r["refused"] == []
        assert r["metrics"] == {
            "metrics/num-examples": 1,
            "metrics/partition-id": 1,
            "metrics/cm-personal": 36,
            "metrics/cm-pseudo": 36,
        }
    assert all(r["metrics"] == TRAIN_METRICS for r in records if r["type"] == "train")
    scores = [
        {r["round"]: {c["evaluate"]["partition-id"]: c["evaluate"] for c in r["clients"].values()} for r in rounds}
        for rounds in (json.loads(inline.rounds.read_text()), json.loads(run.rounds.read_text()))
    ]
    assert scores[0] == scores[1]


@pytest.fixture(autouse=True)
def client_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity Flower's runtime gives a ClientApp process, which building a Message reads."""
    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 7)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)


def request(kind: str) -> Message:
    content = {"arrays": ArrayRecord(v_state(VFERHead(6))), "config": ConfigRecord({"server-round": 1})}
    return Message(RecordDict(content), dst_node_id=7, message_type=kind)


def context(tmp_path: Path, client_eval: bool, scores_in_train: bool = True) -> Context:
    run_config = {"client-eval": client_eval, "scores-in-train": scores_in_train, "audit-dir": str(tmp_path)}
    return Context(run_id=1, node_id=7, node_config={}, state=RecordDict(), run_config=run_config)


def test_a_reply_with_an_extra_array_is_refused_and_recorded(tmp_path: Path) -> None:
    def leaky_train(msg: Message, _: Context) -> Message:
        state = {**v_state(VFERHead(6)), "features": torch.zeros(4, 1280)}
        metrics = MetricRecord({"num-examples": 3, "partition-id": 0, "train-loss": 0.5})
        return Message(RecordDict({"arrays": ArrayRecord(state), "metrics": metrics}), reply_to=msg)

    reply = audit_mod(request(MessageType.TRAIN), context(tmp_path, False), leaky_train)

    assert reply.has_error() and "array 'features' [4, 1280]" in reply.error.reason
    record = json.loads(next(tmp_path.glob("*-train.json")).read_text())
    assert record["refused"] == ["array 'features' [4, 1280]"]
    assert record["arrays"]["arrays/features"]["shape"] == [4, 1280]


@pytest.mark.parametrize("client_eval", [False, True])
def test_label_derived_counts_leave_only_when_the_study_asks(tmp_path: Path, client_eval: bool) -> None:
    def evaluate(msg: Message, _: Context) -> Message:
        metrics = MetricRecord({"num-examples": 5, "partition-id": 0, "cm-personal": [1] * 36, "cm-pseudo": [0] * 36})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    reply = audit_mod(request(MessageType.EVALUATE), context(tmp_path, client_eval), evaluate)

    assert reply.has_error() is not client_eval
    if not client_eval:
        assert "metric 'cm-personal'" in reply.error.reason and "metric 'cm-pseudo'" in reply.error.reason


@pytest.mark.parametrize(("client_eval", "scores_in_train"), [(False, True), (True, False), (True, True)])
def test_label_derived_counts_ride_in_a_train_reply_only_when_both_settings_ask(
    tmp_path: Path, client_eval: bool, scores_in_train: bool
) -> None:
    def train(msg: Message, _: Context) -> Message:
        metrics = {"num-examples": 3, "partition-id": 0, "train-loss": 0.5, "num-labelled": 5}
        metrics |= {"cm-personal": [1] * 36, "cm-pseudo": [0] * 36}
        return Message(RecordDict({"arrays": msg.content["arrays"], "metrics": MetricRecord(metrics)}), reply_to=msg)

    reply = audit_mod(request(MessageType.TRAIN), context(tmp_path, client_eval, scores_in_train), train)

    allowed = client_eval and scores_in_train
    assert reply.has_error() is not allowed
    if not allowed:
        assert "metric 'cm-personal'" in reply.error.reason and "metric 'num-labelled'" in reply.error.reason


def test_dp_flags_reach_the_run_config_and_default_to_off() -> None:
    parse = cli.build_parser(["run"]).parse_args
    assert options_from_args(parse(["run"])).federation.privacy == PrivacyConfig()
    # Label-derived counts are asked for by default, in the run config as by the flags (fedfer.runconfig).
    assert not FederationConfig().privacy.enabled and FederationConfig().client_eval is True
    on = options_from_args(parse(["run", "--dp-noise", "0.3"])).federation.privacy
    assert on == PrivacyConfig(noise_multiplier=0.3, clipping_norm=DEFAULT_DP_CLIPPING_NORM) and on.enabled
    values = FederationConfig(privacy=on).to_run_config()
    assert values["dp-noise-multiplier"] == 0.3 and FederationConfig.from_run_config(values).privacy == on
    assert options_from_args(parse(["run", "--no-client-eval"])).federation.client_eval is False
    explicit = options_from_args(parse(["run", "--dp-noise-multiplier", "0.3", "--dp-clipping-norm", "2"]))
    assert explicit.federation.privacy == PrivacyConfig(noise_multiplier=0.3, clipping_norm=2.0)
