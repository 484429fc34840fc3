"""A subject's unlabeled personalization of v(): pseudo-label with the teacher, fine-tune only v().

f() and the teacher (g(), or an external model) stay frozen and are only run; v() is fine-tuned
with plain, unweighted cross-entropy, because the selection already caps each class at P videos.

The paper's rule is the default of every `PersonalizeConfig` setting. The others, in the order a
client applies them (each reads only the subject's clips and what the server sent):
1. `adabn`: v()'s BatchNorm statistics re-estimated on the subject's clips (fedfer.model.frame_adaptation);
2. `entropy-epochs`: v()'s BatchNorm affine parameters trained to confident, diverse predictions;
3. `teacher-shift`: g()'s clip probabilities corrected for the subject's class prior (fedfer.model.teacher_shift);
4. `combine`: the (adapted) received v()'s predictions on the same clips as a second opinion;
5. `threshold-rule`: per-class thresholds instead of one p-threshold (fedfer.model.pseudo);
6. `labels-from`: train on the pseudo labels, on K of the subject's own labelled clips per class
   (few-shot, as FedAffect's few-shot learner assumes), or on both;
7. `local-labels`: fine-tune towards the hard pseudo label or the corrected distribution (KL);
8. `local-head`: cross-entropy fine-tuning, or prototype episodes and a nearest-prototype output layer
   (fedfer.model.prototypes), on the hard labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedfer.config import TrainConfig
from fedfer.model.frame_adaptation import adapt_batchnorm, information_maximisation
from fedfer.model.heads import VFERHead
from fedfer.model.inference import predict_proba
from fedfer.model.prototypes import train_prototypes
from fedfer.model.pseudo import PseudoLabels, adaptive_thresholds, select_pseudo_labels
from fedfer.model.teacher_shift import combine_with_student, parse_prior, shift_teacher
from fedfer.model.training import LabelledSet, fit
from fedfer.runconfig import PersonalizeConfig


@dataclass(frozen=True)
class PersonalizeResult:
    """What local fine-tuning did; `pseudo` stays on the client (it describes the subject's videos)."""

    pseudo: PseudoLabels
    train_loss: list[float]

    @property
    def num_selected(self) -> int:
        return len(self.pseudo.indices)


def personalize(
    v: VFERHead,
    probabilities: np.ndarray,
    clips: Sequence[np.ndarray],
    config: PersonalizeConfig,
    own_labels: np.ndarray | None = None,
) -> PersonalizeResult:
    """Fine-tune `v` in place on the subject's pseudo-labelled clips (list of (T_i, 1280) features).

    probabilities: (N, K) the teacher's mean class probabilities per clip (`clip_probabilities` for
    g()). own_labels: (N,) the subject's own labels of the same clips (-1 where it has none), read
    only under `labels-from` subject or both. With no clip to train on, `v` is left unchanged and
    the result says 0 selected; `result.pseudo` holds the labels v() was trained on.
    """
    num_classes = v.out.out_features
    if probabilities.shape != (len(clips), num_classes):
        raise ValueError(f"need ({len(clips)}, {num_classes}) teacher probabilities, got {probabilities.shape}")
    if len(clips) == 0:
        return PersonalizeResult(select_pseudo_labels(probabilities, config.max_per_class, config.p_threshold), [])
    if config.adabn:
        adapt_batchnorm(v, clips)
    if config.entropy_epochs:
        information_maximisation(v, clips, config.entropy_epochs, config.lr, config.batch_size, seed=config.seed)
    targets = pseudo_label_targets(v, probabilities, clips, config)
    thresholds = adaptive_thresholds(targets, config.p_threshold, config.threshold_rule)
    pseudo = select_pseudo_labels(targets, config.max_per_class, thresholds)
    if config.labels_from != "teacher":
        pseudo, targets = with_own_labels(pseudo, targets, own_labels, config)
    if len(pseudo.indices) == 0:
        return PersonalizeResult(pseudo, [])
    chosen = [clips[i] for i in pseudo.indices]
    if config.local_head == "prototype":
        return PersonalizeResult(pseudo, train_prototypes(v, chosen, pseudo.labels, config))
    labels = pseudo.labels if config.local_labels == "hard" else targets[pseudo.indices]
    return PersonalizeResult(pseudo, fine_tune(v, chosen, labels, config))


def few_shot_positions(own_labels: np.ndarray, per_class: int, num_classes: int, seed: int) -> np.ndarray:
    """Sorted positions of `per_class` clips of each class (fewer where the subject has fewer), drawn
    at random among the clips the subject labelled: the clips it would label for a few-shot learner."""
    rng = np.random.default_rng(seed)
    chosen = []
    for k in range(num_classes):
        have = np.flatnonzero(own_labels == k)
        chosen.extend(rng.choice(have, size=min(per_class, len(have)), replace=False).tolist())
    return np.array(sorted(chosen), dtype=np.int64)


def with_own_labels(
    pseudo: PseudoLabels, targets: np.ndarray, own_labels: np.ndarray | None, config: PersonalizeConfig
) -> tuple[PseudoLabels, np.ndarray]:
    """The training labels under `labels-from` subject (the subject's few-shot clips alone) or both
    (those, and the teacher's selection elsewhere); a labelled clip's target becomes its one-hot label."""
    if own_labels is None:
        raise ValueError(f"labels-from {config.labels_from} needs the subject's own labels of its clips")
    own_labels = np.asarray(own_labels, dtype=np.int64)
    num_classes = targets.shape[1]
    shots = few_shot_positions(own_labels, config.labelled_per_class, num_classes, config.seed)
    keep = pseudo.indices[~np.isin(pseudo.indices, shots)] if config.labels_from == "both" else shots[:0]
    indices = np.union1d(shots, keep).astype(np.int64)
    labels = np.where(np.isin(indices, shots), own_labels[indices], targets[indices].argmax(axis=1))
    targets = targets.copy()
    targets[shots] = np.eye(num_classes, dtype=targets.dtype)[own_labels[shots]]
    confidence = targets[indices].max(axis=1).astype(np.float32)
    return PseudoLabels(indices, labels.astype(np.int64), confidence), targets


def pseudo_label_targets(
    v: VFERHead, probabilities: np.ndarray, clips: Sequence[np.ndarray], config: PersonalizeConfig
) -> np.ndarray:
    """(N, K) the distributions the selection ranks: g()'s clip probabilities after `teacher-shift`
    and `combine` (with `v`'s own predictions on the clips); g()'s unchanged under the paper's rule."""
    shifted = shift_teacher(probabilities, config.teacher_shift, parse_prior(config.class_prior, v.out.out_features))
    if config.combine == "teacher":
        return shifted
    return combine_with_student(shifted, predict_proba(v, clips), config.combine)


def fine_tune(v: VFERHead, clips: Sequence[np.ndarray], labels: np.ndarray, config: PersonalizeConfig) -> list[float]:
    """The local fine-tuning step alone, on any labels (pseudo, true, or of a simulated labeller):
    `config`'s epochs, lr and batch size, unweighted cross-entropy ((N,) class indices) or KL ((N, K)
    distributions), no dev set. Returns the epoch losses."""
    train = LabelledSet(list(clips), labels)
    stage = TrainConfig(
        stage="vfer",
        num_classes=v.out.out_features,
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        class_weighted=False,
        seed=config.seed,
    )
    history = fit(v, train, None, stage, progress=False)
    v.eval()
    return history.train_loss
