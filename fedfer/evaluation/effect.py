"""The personalization effect measured over many worlds and splits, every comparison on the same subjects.

A *unit* is one (world seed, split) of a study: its subjects, each with its test clips' truth and
every model's predictions on them, and what each subject's pseudo-labelling selected. From units:

- per-class precision / recall / F1 of each model, pooled over a unit's subjects, then mean ± 95%
  t-interval over units (`per_class`);
- paired effects (model − reference) of macro F1 and of Neutral recall per unit, mean ± interval
  (`paired`), and the per-subject gains of weighted F1 ("micro" in the paper) over all units with
  the two-sided Wilcoxon signed-rank test and the improved / unchanged / worse tally (`subjects`);
- pseudo-label precision and recall per class, pooled over every subject (`pseudo_labels`).
Only subjects scored under both models of a comparison enter it: a row never mixes subject sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from sklearn.metrics import f1_score

from fedfer.evaluation.metrics import evaluate_predictions
from fedfer.evaluation.stats import Interval, mean_ci

UNCHANGED = 1e-9  # |gain| at or below this counts as unchanged


@dataclass
class SubjectResult:
    """One subject of a unit: test truth, each model's test predictions, and its selection."""

    actor: str
    truth: np.ndarray  # (N_test,) class indices
    predictions: dict[str, np.ndarray]  # model → (N_test,)
    selected_labels: dict[str, np.ndarray] = field(default_factory=dict)  # method → (M,) pseudo labels
    selected_truth: dict[str, np.ndarray] = field(default_factory=dict)  # method → (M,) true labels (-1: none)
    adapt_truth: np.ndarray | None = None  # (N_adapt,) true labels of the adaptation clips (-1: none)
    _weighted_f1: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    def weighted_f1(self, model: str, num_classes: int) -> float:
        """Weighted F1 of `model` on this subject's test clips (the paper's "micro"), computed once per
        model: a study compares each model with several references on the same subjects."""
        if model not in self._weighted_f1:
            self._weighted_f1[model] = float(
                f1_score(
                    self.truth,
                    self.predictions[model],
                    labels=list(range(num_classes)),
                    average="weighted",
                    zero_division=0,
                )
            )
        return self._weighted_f1[model]


@dataclass
class Unit:
    world_seed: int
    split: int
    classes: tuple[str, ...]
    subjects: list[SubjectResult]

    def scored(self, *models: str) -> list[SubjectResult]:
        """The subjects that every one of `models` scored."""
        return [s for s in self.subjects if all(m in s.predictions for m in models)]

    def report(self, model: str, subjects: Sequence[SubjectResult]):
        truth = np.concatenate([s.truth for s in subjects])
        return evaluate_predictions(truth, np.concatenate([s.predictions[model] for s in subjects]), self.classes)


def per_class(units: Sequence[Unit], model: str, reference: str | None = None) -> dict[str, dict[str, Interval]]:
    """{class or "macro" or "weighted": {precision, recall, f1: Interval over units}} of `model`,
    each unit pooled over the subjects it shares with `reference` (all of its subjects when None)."""
    rows: dict[str, dict[str, list[float]]] = {}
    for unit in units:
        subjects = unit.scored(model, *(reference,) if reference else ())
        r = unit.report(model, subjects)
        for k, cls in enumerate(unit.classes):
            for metric, values in (("precision", r.precision), ("recall", r.recall), ("f1", r.f1)):
                rows.setdefault(cls, {}).setdefault(metric, []).append(values[k])
        for metric in ("precision", "recall", "f1"):
            rows.setdefault("macro", {}).setdefault(metric, []).append(float(np.mean(getattr(r, metric))))
        rows.setdefault("weighted", {}).setdefault("f1", []).append(r.weighted_f1)
    return {cls: {m: mean_ci(v) for m, v in metrics.items()} for cls, metrics in rows.items()}


@dataclass(frozen=True)
class Paired:
    """model − reference on the same subjects: per-unit differences and per-subject gains."""

    macro_f1: Interval  # per unit, pooled macro F1 difference
    neutral_recall: Interval  # per unit, Neutral recall difference
    subject_gains: np.ndarray  # (S,) weighted F1 differences of every subject of every unit
    improved: int
    unchanged: int
    worse: int
    wilcoxon_p: float  # two-sided, over subjects with a change

    @property
    def subjects(self) -> int:
        return len(self.subject_gains)


def paired(units: Sequence[Unit], model: str, reference: str) -> Paired:
    """The paired effect of `model` against `reference` (see `Paired`)."""
    macro, neutral, gains = [], [], []
    for unit in units:
        subjects = unit.scored(model, reference)
        a, b = unit.report(model, subjects), unit.report(reference, subjects)
        macro.append(a.macro_f1 - b.macro_f1)
        if "NEU" in unit.classes:
            k = unit.classes.index("NEU")
            neutral.append(a.recall[k] - b.recall[k])
        k = len(unit.classes)
        gains += [s.weighted_f1(model, k) - s.weighted_f1(reference, k) for s in subjects]
    g = np.asarray(gains)
    moved = g[np.abs(g) > UNCHANGED]
    p = float(stats.wilcoxon(moved).pvalue) if len(moved) > 0 else float("nan")
    return Paired(
        mean_ci(macro),
        mean_ci(neutral) if neutral else Interval(float("nan"), float("nan"), 0),
        g,
        int((g > UNCHANGED).sum()),
        int((np.abs(g) <= UNCHANGED).sum()),
        int((g < -UNCHANGED).sum()),
        p,
    )


def pseudo_labels(units: Sequence[Unit], method: str) -> dict[str, dict[str, float]]:
    """{class: {precision, recall, selected}} of `method`'s selections pooled over every subject:
    precision = right / selected as the class; recall = right / adaptation clips of the class."""
    out: dict[str, dict[str, float]] = {}
    for k, cls in enumerate(units[0].classes):
        selected = right = present = 0
        for unit in units:
            for s in unit.subjects:
                labels = s.selected_labels.get(method)
                if labels is None:
                    continue
                truth = s.selected_truth[method]
                selected += int((labels == k).sum())
                right += int(((labels == k) & (truth == k)).sum())
                present += int((s.adapt_truth == k).sum()) if s.adapt_truth is not None else 0
        out[cls] = {
            "precision": right / selected if selected else float("nan"),
            "recall": right / present if present else float("nan"),
            "selected": float(selected),
        }
    return out
