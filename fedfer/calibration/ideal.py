"""The best possible still-image teacher of a world: the stills annotator's own posterior.

A g() trained on the AffectNet-shaped stills learns, at best, the probability that the stills'
annotator gives each label to a face (`expected_votes` on the face's action units), reweighted by
the class weighting g() is trained with. Applied to the planned stills it bounds what a learned g()
can score on them (Table 1); applied frame by frame to the planned videos (the talking jaw added to
AU26 as the renderer draws it) it says what any g() could see in a subject's clips: how many
Neutral clips it could recognise and how their P(NEU) sits against the selection threshold. No
rendering, no training: a candidate world is scored in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from fedfer.data.datasets import EMOTIONS_6, task_classes
from fedfer.synth.affectnet import EXPRESSIONS, Still
from fedfer.synth.crema_d import CremaDClip
from fedfer.synth.expression import AU_INDEX
from fedfer.synth.raters import RaterModel, expected_votes, face_evidence

# The renderer opens the jaw by 0.9 × AU26 + the speech track's jaw (fedfer.synth.face): in AU26 units
# a talking jaw is its speech value / 0.9.
SPEECH_JAW_GAIN = 0.9


def annotator_posterior(aus: np.ndarray, classes: Sequence[str], annotator: RaterModel) -> np.ndarray:
    """(N, K) share of the annotator's labels per class of `classes` for faces `aus` (N, N_AUS),
    renormalised over the task's classes (labels outside the task are dropped, as the reader drops
    those rows)."""
    index = [EXPRESSIONS.index(c) for c in classes]
    shares = np.stack([expected_votes(face_evidence(a, EXPRESSIONS), EXPRESSIONS, annotator) for a in aus])[:, index]
    return shares / shares.sum(axis=1, keepdims=True)


def class_weights(codes: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """(K,) inverse-frequency weights of the training labels, mean 1: what g()'s class-weighted loss
    does to its posterior (the same rule as `fedfer.model.train.class_weights`)."""
    counts = np.array([sum(c == k for c in codes) for k in classes], np.float64)
    weights = counts.sum() / (len(classes) * np.maximum(counts, 1.0))
    return weights / weights.mean()


@dataclass(frozen=True)
class IdealG:
    """The ideal g() of a task: the annotator's posterior times the training class weights."""

    classes: tuple[str, ...]
    annotator: RaterModel
    weights: np.ndarray  # (K,)

    def __call__(self, aus: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities for faces (N, N_AUS)."""
        p = annotator_posterior(aus, self.classes, self.annotator) * self.weights
        return p / p.sum(axis=1, keepdims=True)


def ideal_g(train: Sequence[Still], num_classes: int, annotator: RaterModel) -> IdealG:
    """The ideal g() for the task, weighted by the labels of the training stills of the task."""
    classes = task_classes(num_classes)
    codes = [EXPRESSIONS[s.code] for s in train if s.code < len(EXPRESSIONS) and EXPRESSIONS[s.code] in classes]
    return IdealG(classes, annotator, class_weights(codes, classes))


def still_scores(g: IdealG, stills: Sequence[Still]) -> dict[str, dict[str, float]]:
    """Per-class precision, recall and F1 (percent) of `g` on the stills labelled with a task class,
    plus their macro mean under "macro"."""
    kept = [s for s in stills if s.code < len(EXPRESSIONS) and EXPRESSIONS[s.code] in g.classes]
    truth = np.array([g.classes.index(EXPRESSIONS[s.code]) for s in kept])
    predicted = g(np.stack([s.plan.aus for s in kept])).argmax(axis=1)
    return per_class_scores(truth, predicted, g.classes)


def per_class_scores(truth: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, float]]:
    """{class: {precision, recall, f1}} in percent, and their unweighted means under "macro"."""
    labels = list(range(len(classes)))
    p, r, f, _ = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    out = {c: {"precision": 100 * p[k], "recall": 100 * r[k], "f1": 100 * f[k]} for k, c in enumerate(classes)}
    out["macro"] = {"precision": 100 * p.mean(), "recall": 100 * r.mean(), "f1": 100 * f.mean()}
    return out


def frame_aus(clip: CremaDClip) -> np.ndarray:
    """(T, N_AUS) what a single frame of the clip shows: its AUs with the talking jaw drawn into AU26,
    as the renderer combines them."""
    aus = clip.take.plan.aus.copy()
    jaw = AU_INDEX["AU26"]
    aus[:, jaw] = np.minimum(1.0, aus[:, jaw] + clip.take.plan.speech[:, 0] / SPEECH_JAW_GAIN)
    return aus


def clip_teacher(g: IdealG, clips: Sequence[CremaDClip]) -> np.ndarray:
    """(N, K) the ideal g()'s frame-mean probabilities per planned clip (the paper's clip rule)."""
    return np.stack([g(frame_aus(c)).mean(axis=0) for c in clips])


def neutral_visibility(
    g: IdealG, clips: Sequence[CremaDClip], labels: Sequence[str | None], threshold: float
) -> dict[str, float | list[float]]:
    """What the best g() sees of Neutral: its recall on clips labelled NEU, their P(NEU) (mean, max,
    share at or above `threshold`, and a histogram in 0.05 bins), and the argmax recall per class."""
    probs = clip_teacher(g, clips)
    predicted = [g.classes[k] for k in probs.argmax(axis=1)]
    neu = g.classes.index("NEU")
    p_neu = np.array([p[neu] for p, lab in zip(probs, labels) if lab == "NEU"])
    recall = {
        c: float(np.mean([pr == c for pr, lab in zip(predicted, labels) if lab == c]))
        for c in g.classes
        if any(lab == c for lab in labels)
    }
    return {
        "neutral_recall": recall.get("NEU", 0.0),
        "recall": recall,
        "p_neu_mean": float(p_neu.mean()) if len(p_neu) else 0.0,
        "p_neu_max": float(p_neu.max()) if len(p_neu) else 0.0,
        "p_neu_at_threshold": float((p_neu >= threshold).mean()) if len(p_neu) else 0.0,
        "p_neu_histogram": np.histogram(p_neu, bins=20, range=(0.0, 1.0))[0].tolist(),
    }


__all__ = [
    "EMOTIONS_6",
    "IdealG",
    "annotator_posterior",
    "class_weights",
    "clip_teacher",
    "frame_aus",
    "ideal_g",
    "neutral_visibility",
    "per_class_scores",
    "still_scores",
]
