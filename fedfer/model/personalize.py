"""A subject's unlabeled personalization of v(): pseudo-label with the teacher, fine-tune only v().

f() and the teacher (g(), or an external model) stay frozen and are only run; v() is fine-tuned
with plain, unweighted cross-entropy, because the selection already caps each class at P videos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedfer.config import TrainConfig
from fedfer.model.heads import VFERHead
from fedfer.model.pseudo import PseudoLabels, select_pseudo_labels
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
    v: VFERHead, probabilities: np.ndarray, clips: Sequence[np.ndarray], config: PersonalizeConfig
) -> PersonalizeResult:
    """Fine-tune `v` in place on the subject's pseudo-labelled clips (list of (T_i, 1280) features).

    probabilities: (N, K) the teacher's mean class probabilities per clip (`clip_probabilities` for
    g()). With no clip above the threshold, `v` is left unchanged and the result says 0 selected.
    """
    num_classes = v.out.out_features
    if probabilities.shape != (len(clips), num_classes):
        raise ValueError(f"need ({len(clips)}, {num_classes}) teacher probabilities, got {probabilities.shape}")
    pseudo = select_pseudo_labels(probabilities, config.max_per_class, config.p_threshold)
    if len(pseudo.indices) == 0:
        return PersonalizeResult(pseudo, [])
    history = fine_tune(v, [clips[i] for i in pseudo.indices], pseudo.labels, config)
    return PersonalizeResult(pseudo, history)


def fine_tune(v: VFERHead, clips: Sequence[np.ndarray], labels: np.ndarray, config: PersonalizeConfig) -> list[float]:
    """The local fine-tuning step alone, on any labels (pseudo, true, or of a simulated labeller):
    `config`'s epochs, lr and batch size, unweighted cross-entropy, no dev set. Returns the epoch losses."""
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
