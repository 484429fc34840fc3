"""The crowd workload: feature-level subjects drawn on demand, nodes serving many of them, on real Flower runs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fedfer.data.subject import load_subject, read_subjects_file
from fedfer.federation.group import train_crowd_group
from fedfer.federation.protocol import v_state, weighted_mean
from fedfer.model.checkpoint import load_head
from fedfer.model.heads import VFERHead
from fedfer.model.pseudo import clip_probabilities, select_pseudo_labels
from fedfer.runconfig import CrowdConfig, PersonalizeConfig
from fedfer.rundir import RunDir
from fedfer.runs.scale import crowd_model_of, simulate_crowd
from fedfer.synth.crowd import CrowdModel, fit_crowd_from_run, subjects_of_node

PERSONALIZE = PersonalizeConfig(max_per_class=5, p_threshold=0.3)  # as the prepared run's (conftest)


@pytest.fixture(scope="module")
def prepared(prepared_tiny: Path) -> Path:
    return prepared_tiny


@pytest.fixture(scope="module")
def crowd(prepared, tmp_path_factory) -> CrowdModel:
    return CrowdModel.load(crowd_model_of(prepared, tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def g(prepared, crowd):
    run = json.loads(RunDir(prepared).options_file.read_text())
    return load_head(Path(run["ifer_checkpoint_used"]), stage="ifer", classes=crowd.classes)[0]


def selected(crowd: CrowdModel, g, seed: int, index: int) -> int:
    """How many of crowd subject `index`'s videos g() pseudo-labels (P and threshold of PERSONALIZE)."""
    probabilities = clip_probabilities(g, crowd.subject(seed, index).features)
    return len(select_pseudo_labels(probabilities, PERSONALIZE.max_per_class, PERSONALIZE.p_threshold).indices)


def training_seed(crowd: CrowdModel, g, size: int) -> int:
    """A crowd seed whose first `size` subjects all select videos, so that each of them really trains."""
    return next(seed for seed in range(50) if all(selected(crowd, g, seed, i) for i in range(size)))


def test_a_crowd_subject_is_a_function_of_seed_and_index(crowd, prepared) -> None:
    a, again, other, reseeded = crowd.subject(7, 3), crowd.subject(7, 3), crowd.subject(7, 4), crowd.subject(8, 3)
    source = [load_subject(d) for d in read_subjects_file(RunDir(prepared).subjects_file)]
    lengths = {len(f) for s in source for f in s.features}
    assert len(a.features) == crowd.clips_per_subject == round(np.mean([len(s.features) for s in source]))
    for clip, same in zip(a.features, again.features):
        assert clip.dtype == np.float16 and clip.shape[1] == 1280 and len(clip) in lengths
        assert (clip >= 0).all() and np.array_equal(clip, same)
    assert np.array_equal(a.labels, again.labels) and set(a.labels) <= set(range(len(crowd.classes)))
    assert a.classes == source[0].classes and a.subject == "crowd-3"
    assert not np.array_equal(a.features[0][:5], other.features[0][:5])
    assert not np.array_equal(a.features[0][:5], reseeded.features[0][:5])


def test_the_crowd_model_keeps_its_fit_through_its_file(crowd, prepared, tmp_path: Path) -> None:
    refit = fit_crowd_from_run(RunDir(prepared).subjects_file)
    loaded = CrowdModel.load(refit.save(tmp_path / "m.npz"))
    assert loaded.classes == refit.classes == crowd.classes
    for name in ("class_freq", "neutral", "delta", "rest_std", "style_std", "noise_std", "clip_frames"):
        assert np.array_equal(getattr(loaded, name), getattr(refit, name)), name
    assert loaded.subject(0, 1).features[2].tobytes() == refit.subject(0, 1).features[2].tobytes()
    with pytest.raises(FileNotFoundError, match="fit one"):
        CrowdModel.load(tmp_path / "absent.npz")


def test_crowd_subjects_are_pseudo_labelled_and_trained(crowd, g, prepared) -> None:
    """The method's work on a crowd subject: g()'s pseudo labels, top-P selection, 2 epochs of v()."""
    run = json.loads(RunDir(prepared).options_file.read_text())
    central, _ = load_head(Path(run["central_checkpoint"]), stage="vfer", classes=crowd.classes)
    start = v_state(central)
    seed = training_seed(crowd, g, 1)
    result = train_crowd_group(start, [0], crowd, seed, g, PERSONALIZE, "keras")
    subject = crowd.subject(seed, 0)
    expected = select_pseudo_labels(clip_probabilities(g, subject.features), 5, 0.3)
    assert result.subjects == 1 and result.weight == len(expected.indices) > 0
    assert np.bincount(expected.labels).max() <= 5
    assert np.isfinite(result.mean_loss)
    changed = [k for k in start if not torch.equal(start[k], result.state[k])]
    assert "lstm.weight_ih_l0" in changed and "out.weight" in changed


def test_a_node_reply_is_the_weighted_partial_average_of_its_subjects(crowd, g) -> None:
    start = v_state(VFERHead(len(crowd.classes)))
    seed = training_seed(crowd, g, 3)
    alone = [train_crowd_group(start, [i], crowd, seed, g, PERSONALIZE, "keras") for i in range(3)]
    together = train_crowd_group(start, range(3), crowd, seed, g, PERSONALIZE, "keras")
    assert together.weight == sum(r.weight for r in alone) and together.subjects == 3
    expected = weighted_mean([r.state for r in alone], [r.weight for r in alone])
    for key, tensor in expected.items():
        torch.testing.assert_close(together.state[key], tensor, rtol=1e-5, atol=1e-6)


def test_nodes_cover_the_crowd_once(tmp_path: Path) -> None:
    served = [i for p in range(4) for i in subjects_of_node(p, 3, 10)]
    assert served == list(range(10))
    with pytest.raises(ValueError, match="ceil"):
        subjects_of_node(4, 3, 10)


def test_fedavg_over_grouped_nodes_equals_one_node_per_subject_in_flower(crowd, g, prepared, tmp_path: Path) -> None:
    """Two real Flower simulations of the same 3-subject crowd: 3 nodes of 1 subject, 2 nodes of 2 and 1."""
    runs, seed, model = {}, training_seed(crowd, g, 3), str(crowd_model_of(prepared, tmp_path))
    for per_node in (1, 2):
        out = tmp_path / f"per-node-{per_node}"
        config = CrowdConfig(model=model, size=3, seed=seed, subjects_per_node=per_node)
        simulate_crowd(prepared, out, config, rounds=1)
        runs[per_node] = out
    states = {n: load_head(RunDir(o).central_checkpoint(1), stage="vfer")[0].state_dict() for n, o in runs.items()}
    before = load_head(RunDir(runs[1]).central_checkpoint(0), stage="vfer")[0].state_dict()
    assert any(not torch.equal(before[k], states[1][k]) for k in before)  # a round really trained
    for key, tensor in states[1].items():
        torch.testing.assert_close(states[2][key], tensor, rtol=1e-5, atol=1e-6)
    flat, grouped = (json.loads(RunDir(runs[n]).rounds.read_text())[0] for n in (1, 2))
    assert len(flat["bytes_up"]) == 3 and len(grouped["bytes_up"]) == 2
    # What the devices would send is counted per subject: three replies of one v() each, either way.
    assert grouped["device_bytes_up_total"] == pytest.approx(flat["device_bytes_up_total"], rel=1e-3)
    assert grouped["bytes_up_total"] < flat["bytes_up_total"]
    log = RunDir(runs[2]).flower_log.read_text()
    assert "[fedfer] round 1: 2/2 nodes replied (3 subjects)" in log


def test_fedfer_run_federates_a_crowd_from_the_command_line(prepared: Path, capsys) -> None:
    """`fedfer run --crowd N`: the world's run is prepared as usual, then N crowd subjects are federated."""
    from fedfer.cli import main

    record = json.loads(RunDir(prepared).options_file.read_text())
    results = Path(record["results"])
    argv = ["run", "--world", "tiny", "--workspace", record["workspace"], "--results", str(results)]
    argv += ["--name", "crowd-cli", "--clients", "3", "--image-size", "112", "--ifer-epochs", "4"]
    argv += ["--vfer-epochs", "3", "--max-per-class", "5", "--p-threshold", "0.3", "--rounds", "1"]
    argv += ["--crowd", "5", "--subjects-per-node", "2"]
    assert main(argv) == 0
    out = results / "crowd-cli-crowd5"
    (record,) = json.loads(RunDir(out).rounds.read_text())
    assert len(record["bytes_up"]) == 3  # ceil(5 / 2) nodes, all sampled
    assert "crowd: 5 subjects on 3 simulated nodes (2 per node)" in capsys.readouterr().out
    assert "[fedfer] round 1: 3/3 nodes replied (5 subjects)" in RunDir(out).flower_log.read_text()
    assert main(argv[:-4] + ["--crowd", "-1"]) == 2  # refused before any work, naming the key (= the flag)
    assert "crowd-size = -1 (expected an integer >= 0)" in capsys.readouterr().err
