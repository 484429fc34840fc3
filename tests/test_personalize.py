"""Pseudo labels and local personalization: the method's selection rule, and only v() changes."""

import hashlib

import numpy as np
import pytest
import torch

from fedfer.config import TrainConfig
from fedfer.federation.protocol import load_v_state, v_state, weighted_mean
from fedfer.model.heads import IFERHead, VFERHead
from fedfer.model.personalize import personalize
from fedfer.model.pseudo import clip_probabilities, select_pseudo_labels
from fedfer.model.training import LabelledSet, train_head
from fedfer.runconfig import PersonalizeConfig


def test_selection_keeps_the_most_confident_per_class_above_threshold() -> None:
    probs = np.array(
        [
            [0.90, 0.05, 0.05],  # class 0, kept
            [0.60, 0.30, 0.10],  # class 0, third by confidence: dropped by P=2
            [0.70, 0.20, 0.10],  # class 0, kept
            [0.45, 0.40, 0.15],  # class 0 but below the threshold
            [0.10, 0.80, 0.10],  # class 1, kept
            [0.30, 0.30, 0.40],  # class 2 below the threshold
        ]
    )
    chosen = select_pseudo_labels(probs, max_per_class=2, threshold=0.5)
    assert chosen.indices.tolist() == [0, 2, 4]
    assert chosen.labels.tolist() == [0, 0, 1]
    assert chosen.per_class(3).tolist() == [2, 1, 0]
    assert len(select_pseudo_labels(probs, 10, 0.95).indices) == 0
    with pytest.raises(ValueError, match="max_per_class"):
        select_pseudo_labels(probs, 0, 0.5)


def test_clip_probability_is_the_mean_of_frame_softmaxes() -> None:
    g = IFERHead(3).eval()
    clip = np.random.default_rng(0).normal(size=(5, 1280)).astype(np.float16)
    with torch.no_grad():
        expected = torch.softmax(g(torch.from_numpy(clip.astype(np.float32))), -1).mean(0).numpy()
    np.testing.assert_allclose(clip_probabilities(g, [clip])[0], expected, rtol=1e-6)


def digest(module: torch.nn.Module) -> str:
    return hashlib.sha256(b"".join(t.numpy().tobytes() for t in module.state_dict().values())).hexdigest()


def test_personalization_changes_v_only() -> None:
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(3, 1280))
    labels = np.arange(30) % 3
    clips = [np.abs(directions[y] + 0.5 * rng.normal(size=(6, 1280))).astype(np.float16) for y in labels]
    g, _ = train_head(
        LabelledSet(np.concatenate(clips), np.repeat(labels, 6)),
        None,
        TrainConfig(stage="ifer", num_classes=3, epochs=3),
        progress=False,
    )
    v = VFERHead(3)
    g_before, v_before = digest(g), digest(v)
    result = personalize(
        v, clip_probabilities(g, clips), clips, PersonalizeConfig(max_per_class=5, p_threshold=0.5, epochs=2)
    )
    assert digest(g) == g_before
    assert digest(v) != v_before
    assert result.num_selected <= 3 * 5
    assert result.num_selected > 0 and len(result.train_loss) == 2


def test_personalization_without_confident_videos_leaves_v_alone() -> None:
    v, g = VFERHead(6), IFERHead(6)
    before = digest(v)
    clips = [np.zeros((4, 1280), np.float16) + 0.01 for _ in range(3)]
    result = personalize(v, clip_probabilities(g, clips), clips, PersonalizeConfig(p_threshold=0.99))
    assert result.num_selected == 0 and digest(v) == before


def test_v_state_is_all_of_v_but_counters() -> None:
    v = VFERHead(6)
    state = v_state(v)
    assert not any(k.endswith("num_batches_tracked") for k in state)
    assert sum(t.numel() for t in state.values()) == 208_838 + 2_944
    with pytest.raises(ValueError, match="unexpected"):
        load_v_state(VFERHead(6), {**state, "g.net.0.weight": torch.zeros(1)})


def test_weighted_mean_weights_by_count() -> None:
    a, b = {"w": torch.zeros(3)}, {"w": torch.ones(3)}
    torch.testing.assert_close(weighted_mean([a, b], [1, 3])["w"], torch.full((3,), 0.75))


def test_a_subject_is_evaluated_with_its_personal_model_of_this_run_only(tmp_path) -> None:
    """A subject left out of a round's training is scored with its personal v() only if this run
    made it; one left on its disk by an earlier run (a lab node kept between runs) is not used."""
    from fedfer.data.store import FeatureStore
    from fedfer.data.subject import write_subject
    from fedfer.federation.client import SubjectClient
    from fedfer.model.checkpoint import HeadCard, save_head
    from fedfer.model.inference import confusion

    rng = np.random.default_rng(0)
    directions = rng.normal(size=(3, 1280))
    labels = np.arange(30) % 3
    clips = [np.abs(directions[y] + 0.5 * rng.normal(size=(6, 1280))).astype(np.float16) for y in labels]
    store = FeatureStore(tmp_path / "features")
    for i, x in enumerate(clips):
        store.save(f"clip{i:02d}", x, {"backbone_id": "test"})
    classes = ("ANG", "HAP", "NEU")
    write_subject(
        tmp_path / "subject", "s1", classes, store.root, [(f"clip{i:02d}", int(y)) for i, y in enumerate(labels)]
    )
    g, _ = train_head(
        LabelledSet(np.concatenate(clips), np.repeat(labels, 6)),
        None,
        TrainConfig(stage="ifer", num_classes=3, epochs=3),
        progress=False,
    )
    save_head(tmp_path / "g.pt", g, HeadCard(stage="ifer", classes=classes, backbone_id="test"))
    config = PersonalizeConfig(max_per_class=5, p_threshold=0.3, epochs=2)
    central = v_state(VFERHead(3))

    earlier = SubjectClient(tmp_path / "subject", tmp_path / "g.pt", config, run_id=1)
    earlier.personalize_round(central, server_round=1, seed=0)
    assert earlier.evaluate(central)["pseudo"].sum() > 0  # its own run: the personal model and its pseudo labels

    later = SubjectClient(tmp_path / "subject", tmp_path / "g.pt", config, run_id=2)
    result = later.evaluate(central)
    expected = confusion(load_v_state(VFERHead(3), central).eval(), clips, labels, 3)
    np.testing.assert_array_equal(result["personal"], expected)  # the received central v(), not the old personal one
    assert result["pseudo"].sum() == 0

    save_head(tmp_path / "g_untrained.pt", IFERHead(3), HeadCard(stage="ifer", classes=classes, backbone_id="test"))
    unsure = SubjectClient(
        tmp_path / "subject", tmp_path / "g_untrained.pt", PersonalizeConfig(p_threshold=0.99), run_id=3
    )
    assert unsure.personalize_round(central, server_round=1, seed=0)[1] == 0  # nothing confident enough
    assert unsure.evaluate(central)["pseudo"].sum() == 0  # and its evaluation still reports
