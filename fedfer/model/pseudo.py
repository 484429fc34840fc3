"""Pseudo labels for a subject's unlabeled videos, from the image model g().

The rule of the method: a video's class probabilities are the mean over its frames of g(f(x_i));
its pseudo label is the argmax. Per class, only the P most confident videos are kept, and none
whose top probability is below the threshold, so the local fine-tuning sees few but likely-correct
labels and no class can flood it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fedfer.config import THRESHOLD_RULES
from fedfer.model.heads import IFERHead


def clip_probabilities(g: IFERHead, clips: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over frames of g()'s softmax for each clip: list of (T_i, 1280) → (N, K).

    All frames go through g() in one batch (g() in eval mode treats frames independently), then are
    averaged per clip: one forward pass per subject instead of one per clip, which is most of a
    client's pseudo-labelling time when its clips are short.
    """
    if not len(clips):
        raise ValueError("clip_probabilities needs at least one clip")
    lengths = [len(c) for c in clips]
    if min(lengths) < 1:
        raise ValueError(f"clip {lengths.index(min(lengths))} has no frames: every clip needs at least one")
    g.eval()
    with torch.inference_mode():
        frames = torch.from_numpy(np.concatenate([np.asarray(c, dtype=np.float32) for c in clips]))  # (ΣT_i, 1280)
        probabilities = torch.softmax(g(frames), dim=-1)  # (ΣT_i, K)
        return torch.stack([p.mean(0) for p in probabilities.split(lengths)]).numpy()


@dataclass(frozen=True)
class PseudoLabels:
    """The selected videos: positions in the subject's clip list, their labels and confidences."""

    indices: np.ndarray  # (M,) int64, into the clip list
    labels: np.ndarray  # (M,) int64
    confidence: np.ndarray  # (M,) float32, top mean probability

    def per_class(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)


def select_pseudo_labels(probabilities: np.ndarray, max_per_class: int, threshold: float | np.ndarray) -> PseudoLabels:
    """Keep ≤ `max_per_class` videos per predicted class, most confident first, none below the threshold.

    probabilities: (N, K) per-video class probabilities; threshold: one value, or (K,) one per
    predicted class (`adaptive_thresholds`). Ties in confidence keep the earlier video, so the
    selection is deterministic. A video with no probability at all (a refusal of
    `fedfer.model.teacher_shift.combine_with_student`) is never selected.
    """
    if max_per_class < 1:
        raise ValueError(f"max_per_class (P) must be >= 1, got {max_per_class}")
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (probabilities.shape[1],))
    if np.any(thresholds < 0.0) or np.any(thresholds >= 1.0):
        raise ValueError(f"p_threshold must be in [0, 1), got {threshold}")
    labels = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    chosen: list[int] = []
    for k in range(probabilities.shape[1]):
        candidates = np.flatnonzero((labels == k) & (confidence >= thresholds[k]) & (confidence > 0))
        ranked = candidates[np.argsort(-confidence[candidates], kind="stable")]
        chosen.extend(ranked[:max_per_class].tolist())
    indices = np.array(sorted(chosen), dtype=np.int64)
    return PseudoLabels(indices, labels[indices].astype(np.int64), confidence[indices].astype(np.float32))


def adaptive_thresholds(probabilities: np.ndarray, threshold: float, rule: str) -> np.ndarray:
    """(K,) per-class thresholds for one subject's (N, K) clip probabilities.

    "fixed": `threshold` for every class (the paper). "flexmatch" (Zhang et al., 2021): each class's
    threshold scaled by how much of it the teacher already predicts confidently, β_k = σ_k /
    max(max σ, unused) with σ_k the clips predicted k above `threshold`, mapped by β/(2 − β): a
    class the teacher rarely calls gets a lower bar. "freematch" (Wang et al., 2023): a global
    threshold, the mean top probability, scaled per class by the class's mean probability over its
    maximum.
    """
    k = probabilities.shape[1]
    if rule == "fixed":
        return np.full(k, threshold)
    confidence = probabilities.max(axis=1)
    if rule == "flexmatch":
        above = confidence >= threshold
        sigma = np.bincount(probabilities.argmax(axis=1)[above], minlength=k).astype(np.float64)
        beta = sigma / max(sigma.max(), float((~above).sum()), 1.0)
        return threshold * beta / (2.0 - beta)
    if rule == "freematch":
        marginal = probabilities.mean(axis=0)
        return float(confidence.mean()) * marginal / max(float(marginal.max()), 1e-12)
    raise ValueError(f"unknown threshold rule {rule!r}: use one of {THRESHOLD_RULES}")
