"""Predictions of v() on clips, pooled as confusion matrices and turned into the paper's metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from fedfer.data.subject import SubjectData
from fedfer.evaluation.metrics import ClassificationReport, evaluate_predictions
from fedfer.model.inference import confusion, predict_proba


def labels_from_confusion(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand a confusion matrix back into (y_true, y_pred) so pooled counts can be scored by scikit-learn."""
    k = matrix.shape[0]
    true, pred = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    counts = matrix.ravel()
    return np.repeat(true.ravel(), counts), np.repeat(pred.ravel(), counts)


def report_from_confusion(matrix: np.ndarray, classes: Sequence[str]) -> ClassificationReport:
    """The paper's metrics for pooled counts (e.g. the sum of every subject's confusion matrix)."""
    truth, predicted = labels_from_confusion(np.asarray(matrix, dtype=np.int64))
    return evaluate_predictions(truth, predicted, classes)


def evaluate_subjects(
    model: nn.Module, subjects: Sequence[SubjectData], protocol: str = "transductive", seed: int = 0
) -> dict:
    """Score one v() on every subject's scored clips (its labelled clips; under the held-out protocol
    those of the half it did not adapt on): pooled metrics plus a confusion matrix per subject."""
    classes = subjects[0].classes
    k = len(classes)
    per_subject = {}
    for s in subjects:
        idx = s.halves(protocol, seed)[1]
        per_subject[s.subject] = confusion(model, [s.features[i] for i in idx], s.labels[idx], k)
    pooled = sum(per_subject.values())
    return {
        "overall": report_from_confusion(pooled, classes).to_dict(),
        "per_subject": {name: cm.tolist() for name, cm in per_subject.items()},
    }


def evaluate_central(
    v: nn.Module, g: nn.Module | None, clips: Sequence[np.ndarray], truth: np.ndarray, classes: Sequence[str]
) -> dict[str, ClassificationReport]:
    """v() and the frame-mean rule of g() (the pseudo-label rule) on the same labelled clips (v() alone without g)."""
    from fedfer.model.pseudo import clip_probabilities

    reports = {"vfer": evaluate_predictions(truth, predict_proba(v, clips).argmax(axis=1), classes)}
    if g is not None:
        reports["ifer_frame_mean"] = evaluate_predictions(truth, clip_probabilities(g, clips).argmax(axis=1), classes)
    return reports
