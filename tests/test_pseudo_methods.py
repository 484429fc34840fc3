"""The pseudo-labelling methods beyond the paper's rule, each doing what it claims on known inputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from fedfer.model.frame_adaptation import adapt_batchnorm, information_maximisation, subject_baseline
from fedfer.model.heads import FEATURE_DIM, IFERHead, VFERHead, pad_sequences
from fedfer.model.inference import predict_proba
from fedfer.model.personalize import personalize
from fedfer.model.prototypes import embeddings, set_prototype_classifier, train_prototypes
from fedfer.model.pseudo import adaptive_thresholds, select_pseudo_labels
from fedfer.model.teacher_shift import (
    align_to_prior,
    combine_with_student,
    em_label_shift,
    teacher_clip_probabilities,
)
from fedfer.runconfig import FederationConfig, PersonalizeConfig


def _skewed_probabilities(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A calibrated 3-class teacher under a uniform prior, on a subject whose clips are 70% class 0."""
    truth = rng.choice(3, size=400, p=[0.7, 0.2, 0.1])
    logits = rng.normal(0, 1.0, (400, 3))
    logits[np.arange(400), truth] += 1.2
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True), truth


def test_label_shift_em_finds_the_subjects_prior_and_moves_borderline_clips() -> None:
    p, truth = _skewed_probabilities(np.random.default_rng(0))
    adjusted, prior = em_label_shift(p)
    assert prior[0] > 0.6 and prior[2] < 0.2  # the subject's skew, not the teacher's uniform prior
    assert np.allclose(adjusted.sum(axis=1), 1.0, atol=1e-5)
    assert (adjusted.argmax(1) == truth).mean() > (p.argmax(1) == truth).mean()


def test_alignment_pulls_the_mean_prediction_to_the_target_prior() -> None:
    p, _ = _skewed_probabilities(np.random.default_rng(1))
    target = np.array([0.2, 0.3, 0.5])
    aligned = align_to_prior(p, target)
    assert np.abs(aligned.mean(axis=0) - target).sum() < np.abs(p.mean(axis=0) - target).sum() / 2
    with pytest.raises(ValueError, match="target prior"):
        align_to_prior(p, np.array([0.5, 0.5]))


def test_agreement_keeps_only_clips_where_teacher_and_student_agree() -> None:
    teacher = np.array([[0.8, 0.2], [0.7, 0.3], [0.1, 0.9]], np.float32)
    student = np.array([[0.6, 0.4], [0.2, 0.8], [0.3, 0.7]], np.float32)
    agreed = combine_with_student(teacher, student, "agree")
    chosen = select_pseudo_labels(agreed, max_per_class=5, threshold=0.5)
    assert chosen.indices.tolist() == [0, 2]  # clip 1's teacher says 0, the student 1
    product = combine_with_student(teacher, student, "product")
    assert product[0, 0] > teacher[0, 0] - 0.05 and product[1].max() < teacher[1].max()
    assert combine_with_student(teacher, student, "teacher") is teacher


def test_adaptive_thresholds_lower_the_bar_for_a_class_the_teacher_rarely_calls() -> None:
    rng = np.random.default_rng(2)
    p = np.zeros((100, 3))
    p[:80] = [0.9, 0.05, 0.05]  # class 0 called confidently 80 times
    p[80:] = [0.15, 0.45, 0.4]  # class 1 called 20 times, never confidently
    p = p + rng.uniform(0, 1e-3, p.shape)
    p = p / p.sum(axis=1, keepdims=True)
    flex = adaptive_thresholds(p, 0.5, "flexmatch")
    assert flex[1] < 0.2 < flex[0] <= 0.5
    free = adaptive_thresholds(p, 0.5, "freematch")
    assert free[0] > free[1] > 0
    assert np.all(adaptive_thresholds(p, 0.5, "fixed") == 0.5)
    fixed = select_pseudo_labels(p, 50, 0.5)
    adaptive = select_pseudo_labels(p, 50, flex)
    assert 1 not in fixed.labels and 1 in adaptive.labels
    with pytest.raises(ValueError, match="threshold rule"):
        adaptive_thresholds(p, 0.5, "magic")


def _clips(rng: np.random.Generator, n: int, shift: float) -> list[np.ndarray]:
    return [rng.normal(shift, 1.0, (int(rng.integers(4, 9)), 1280)).astype(np.float32) for _ in range(n)]


def test_adabn_replaces_the_statistics_by_the_subjects_own() -> None:
    torch.manual_seed(0)
    v = VFERHead(3)
    clips = _clips(np.random.default_rng(3), 12, shift=2.0)
    weights = {k: t.clone() for k, t in v.state_dict().items() if "running" not in k and "num_batches" not in k}
    adapt_batchnorm(v, clips)
    frames = np.concatenate(clips)
    first = v.frame[0]
    assert torch.allclose(first.running_mean, torch.from_numpy(frames.mean(0)), atol=1e-4)
    assert first.momentum == 0.01  # the layer's convention is restored
    assert all(torch.equal(t, v.state_dict()[k]) for k, t in weights.items())  # no weight moved
    assert not v.training


def test_information_maximisation_trains_only_normalisation_and_sharpens_predictions() -> None:
    torch.manual_seed(0)
    v = VFERHead(3)
    clips = _clips(np.random.default_rng(4), 24, shift=0.5)
    v.eval()
    with torch.no_grad():
        before_state = {k: t.clone() for k, t in v.state_dict().items()}
    history = information_maximisation(v, clips, epochs=8, lr=1e-2, batch_size=8)
    assert history[-1] < history[0]
    changed = {k for k, t in v.state_dict().items() if not torch.equal(t, before_state[k])}
    learned = {k for k in changed if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert learned and all(k.startswith("frame.") and (k.endswith(".weight") or k.endswith(".bias")) for k in learned)
    assert all(isinstance(dict(v.named_modules())[k.rsplit(".", 1)[0]], torch.nn.BatchNorm1d) for k in learned)
    assert all(p.requires_grad for p in v.parameters())


# ------------------------------------------------------------------------------ through personalize()


def _subject(seed: int) -> tuple[VFERHead, list[np.ndarray], np.ndarray]:
    """A v(), 40 clips and a teacher that calls class 0 confidently, class 1 timidly, class 2 rarely."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    p = np.zeros((40, 3))
    p[:24] = [0.85, 0.1, 0.05]
    p[24:36] = [0.2, 0.45, 0.35]
    p[36:] = [0.3, 0.2, 0.5]
    p = p + rng.uniform(0, 0.02, p.shape)
    return VFERHead(3), _clips(rng, 40, shift=1.0), (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def _selected(config: PersonalizeConfig, seed: int = 5) -> tuple[set[int], VFERHead, np.ndarray]:
    v, clips, p = _subject(seed)
    result = personalize(v, p, clips, replace(config, epochs=0) if config.epochs == 2 else config)
    return set(result.pseudo.indices.tolist()), v, p


def test_each_pseudo_labelling_setting_changes_the_selection_as_it_claims() -> None:
    paper, _, p = _selected(PersonalizeConfig())
    assert paper and not paper & set(range(24, 36))  # class 1 never reaches 0.5

    em, _, _ = _selected(PersonalizeConfig(teacher_shift="em"))
    assert em == set(select_pseudo_labels(em_label_shift(p)[0], 20, 0.5).indices.tolist()) and em != paper

    prior, _, _ = _selected(PersonalizeConfig(teacher_shift="prior", class_prior="0.2,0.6,0.2"))
    assert prior == set(select_pseudo_labels(align_to_prior(p, np.array([0.2, 0.6, 0.2])), 20, 0.5).indices.tolist())
    assert len(prior & set(range(24, 36))) > 0  # the timid class 1 now passes

    flex, _, _ = _selected(PersonalizeConfig(threshold_rule="flexmatch"))
    assert set(range(24, 36)) & flex and paper < flex

    agree, v, _ = _selected(PersonalizeConfig(combine="agree"))
    student = predict_proba(v, _subject(5)[1]).argmax(1)
    assert agree <= {i for i in paper if student[i] == p[i].argmax()}


def test_adabn_and_entropy_settings_adapt_v_before_it_trains() -> None:
    _, adapted, _ = _selected(PersonalizeConfig(adabn=True))
    frames = np.concatenate(_subject(5)[1])
    assert torch.allclose(adapted.frame[0].running_mean, torch.from_numpy(frames.mean(0)), atol=1e-4)

    reference = _subject(5)[0].state_dict()
    _, sharpened, _ = _selected(PersonalizeConfig(entropy_epochs=3, lr=1e-2))
    moved = {k for k, t in sharpened.state_dict().items() if not torch.equal(t, reference[k])}
    learned = {k for k in moved if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert learned and all(
        isinstance(dict(sharpened.named_modules())[k.rsplit(".", 1)[0]], torch.nn.BatchNorm1d) for k in learned
    )


def test_soft_local_labels_train_towards_the_teachers_distribution() -> None:
    """Hard labels push v() to certainty on its pseudo-labelled clips; soft ones towards g()'s own
    confidence (about 0.85 on the confident clips)."""
    config = PersonalizeConfig(epochs=30, lr=1e-2, max_per_class=40)
    outcomes = {}
    for labels in ("hard", "soft"):
        v, clips, p = _subject(6)
        result = personalize(v, p, clips, replace(config, local_labels=labels))
        confident = [i for i in result.pseudo.indices if i < 24]
        outcomes[labels] = predict_proba(v, [clips[i] for i in confident])[:, 0].mean()
    assert outcomes["hard"] > 0.97 and abs(outcomes["soft"] - 0.85) < abs(outcomes["hard"] - 0.85)


def test_few_shot_labels_replace_or_join_the_teachers() -> None:
    """labels-from subject: v() trains on K of the subject's own clips per class, right by definition;
    both: those and the teacher's selection elsewhere, the subject's label winning on its clips."""
    v, clips, p = _subject(7)
    truth = np.array([0] * 20 + [1] * 12 + [2] * 8)
    truth[5] = -1  # a clip the subject did not label is never a shot
    shots = personalize(v, p, clips, PersonalizeConfig(labels_from="subject", labelled_per_class=3, epochs=0), truth)
    assert np.bincount(shots.pseudo.labels, minlength=3).tolist() == [3, 3, 3]
    assert (truth[shots.pseudo.indices] == shots.pseudo.labels).all() and 5 not in shots.pseudo.indices

    paper = personalize(_subject(7)[0], p, clips, PersonalizeConfig(epochs=0))
    both = personalize(
        _subject(7)[0], p, clips, PersonalizeConfig(labels_from="both", labelled_per_class=3, epochs=0), truth
    )
    chosen = set(both.pseudo.indices.tolist())
    assert set(shots.pseudo.indices.tolist()) <= chosen and set(paper.pseudo.indices.tolist()) <= chosen
    own = {i: truth[i] for i in shots.pseudo.indices}
    assert all(label == own.get(i, p[i].argmax()) for i, label in zip(both.pseudo.indices, both.pseudo.labels))
    with pytest.raises(ValueError, match="own labels"):
        personalize(_subject(7)[0], p, clips, PersonalizeConfig(labels_from="subject"))


def _classes_of_clips(rng: np.random.Generator, per_class: int, num_classes: int = 3) -> tuple[list, np.ndarray]:
    """Clips (8 frames of 1280 features) whose class moves a block of features: separable, noisy."""
    labels = np.repeat(np.arange(num_classes), per_class)
    clips = []
    for k in labels:
        x = rng.normal(0, 1, (8, FEATURE_DIM)).astype(np.float32)
        x[:, 100 * k : 100 * k + 100] += 1.5
        clips.append(x)
    return clips, labels


def test_the_prototype_layer_is_the_nearest_prototype_rule() -> None:
    """After set_prototype_classifier, v()'s logits are −‖z − c_k‖² up to a per-clip constant, so its
    prediction is the nearest class mean of the labelled clips' embeddings."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    v = VFERHead(3)
    clips, labels = _classes_of_clips(rng, 4)
    set_prototype_classifier(v, clips, labels)
    with torch.no_grad():
        z = embeddings(v.eval(), clips)
        centres = torch.stack([z[torch.from_numpy(labels == k)].mean(0) for k in range(3)])
        distance = torch.cdist(z, centres).pow(2)
        logits = v(*pad_sequences([torch.from_numpy(c) for c in clips]))
    gap = logits + distance  # the same for every class of a clip: ‖z‖²
    assert torch.allclose(gap, gap[:, :1].expand_as(gap), atol=1e-3)
    assert (logits.argmax(1) == distance.argmin(1)).all()
    before = v.out.weight[2].clone()
    set_prototype_classifier(v, clips[:8], labels[:8])  # class 2 has no clip here: its row stays
    assert torch.equal(v.out.weight[2], before)


def test_prototype_episodes_train_v_to_separate_new_clips() -> None:
    """5 labelled clips per class: episodes lower their loss and the prototypes classify unseen clips
    of the same classes better than those of the untrained v(); 1 per class: no episode, prototypes only."""
    rng = np.random.default_rng(1)
    clips, labels = _classes_of_clips(rng, 5)
    test_clips, test_labels = _classes_of_clips(rng, 20)
    config = PersonalizeConfig(epochs=6, lr=1e-3, seed=0)

    def accuracy(v: VFERHead) -> float:
        return float((predict_proba(v, test_clips).argmax(1) == test_labels).mean())

    torch.manual_seed(0)
    untrained = VFERHead(3)
    set_prototype_classifier(untrained, clips, labels)
    torch.manual_seed(0)
    trained = VFERHead(3)
    history = train_prototypes(trained, clips, labels, config)
    assert len(history) == 6 and history[-1] < history[0]
    assert accuracy(trained) >= max(0.9, accuracy(untrained))
    torch.manual_seed(0)
    assert train_prototypes(VFERHead(3), clips[::5], labels[::5], config) == []


def test_local_head_prototype_is_a_personalization_setting() -> None:
    v, clips, p = _subject(7)
    truth = np.array([0] * 20 + [1] * 12 + [2] * 8)
    start = v.out.weight.detach().clone()
    config = PersonalizeConfig(labels_from="subject", labelled_per_class=3, local_head="prototype", epochs=1)
    result = personalize(v, p, clips, config, truth)
    assert result.num_selected == 9 and len(result.train_loss) == 1
    assert not torch.equal(v.out.weight, start)
    with pytest.raises(ValueError, match="local-head"):
        FederationConfig(personalize=PersonalizeConfig(local_head="relation"))


def _patterns(rng: np.random.Generator, num_classes: int = 3) -> np.ndarray:
    """(K, 1280) what each class adds to a face's features; class 0 (neutral) adds nothing."""
    patterns = rng.normal(0.0, 1.0, (num_classes, FEATURE_DIM)).astype(np.float32)
    patterns[0] = 0.0
    return patterns


def test_the_subject_baseline_lets_g_see_neutral_through_a_resting_face() -> None:
    rng = np.random.default_rng(11)
    torch.manual_seed(0)
    patterns = _patterns(rng)
    labels = rng.integers(0, 3, 600)
    stills = torch.from_numpy(patterns[labels] + rng.normal(0.0, 1.0, (600, FEATURE_DIM)).astype(np.float32))
    g = IFERHead(3)
    optimiser = torch.optim.Adam(g.parameters(), lr=1e-3)
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(g(stills), torch.from_numpy(labels))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    g.eval()
    resting = 0.8 * patterns[2]  # this subject's face at rest looks like class 2
    truth = np.repeat(np.arange(3), 10)
    clips = [patterns[k] + resting + rng.normal(0.0, 1.0, (8, FEATURE_DIM)).astype(np.float32) for k in truth]
    weights = {k: t.clone() for k, t in g.state_dict().items()}
    plain = teacher_clip_probabilities(g, clips, "none").argmax(1)
    based = teacher_clip_probabilities(g, clips, "baseline").argmax(1)
    assert (plain[truth == 0] == 0).mean() < 0.5  # the resting face hides neutral from g()
    assert (based[truth == 0] == 0).mean() >= 0.8 and (based == truth).mean() > (plain == truth).mean()
    assert all(torch.equal(t, g.state_dict()[k]) for k, t in weights.items())  # g() itself is unchanged
    adapted = subject_baseline(g, clips)
    assert torch.allclose(adapted.net[0].running_mean, torch.from_numpy(np.concatenate(clips).mean(0)), atol=1e-4)
    with pytest.raises(ValueError, match="teacher-shift"):
        FederationConfig(teacher="fer2013-mini-xception", personalize=PersonalizeConfig(teacher_shift="baseline"))
