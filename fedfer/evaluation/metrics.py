"""Evaluation as the papers report it: per-class precision/recall/F1, macro/micro means, UAR, WAR.

Every number comes from scikit-learn with `labels=range(K)` and `zero_division=0`, so a class that
a model never predicts, or that a test actor never shows, still has a row (scored 0) and still
counts in the macro means. That keeps tables of different actors and models comparable row by
row; it also means a per-actor macro score is lowered by classes the actor lacks, which is why
per-actor comparisons (the paper's Figure 3) use micro F1.

The paper's "Micro mean" rows have precision != recall, which a true micro average of single-label
predictions cannot have (micro P = micro R = micro F1 = accuracy); their recall equals accuracy
and they behave like scikit-learn's support-weighted average. Both are reported: `micro_*` and
`weighted_*`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from fedfer.io import atomic_write_bytes

# Row names as the paper's tables print them.
EMOTION_NAMES: dict[str, str] = {
    "ANG": "Anger",
    "DIS": "Disgust",
    "FEA": "Fear",
    "HAP": "Happiness",
    "NEU": "Neutral",
    "SAD": "Sadness",
}
_AVERAGES: tuple[tuple[str, str], ...] = (
    ("macro", "Macro mean"),
    ("micro", "Micro mean"),
    ("weighted", "Weighted mean"),
)


@dataclass(frozen=True)
class ClassificationReport:
    """Scores of one set of predictions; fractions in [0, 1], per-class tuples in `classes` order.

    confusion[i][j] counts clips of true class i predicted as j. uar (unweighted average recall)
    is the macro recall; war (weighted average recall) is the accuracy.
    """

    classes: tuple[str, ...]
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    macro: tuple[float, float, float]  # (precision, recall, F1)
    micro: tuple[float, float, float]
    weighted: tuple[float, float, float]
    accuracy: float
    confusion: tuple[tuple[int, ...], ...]

    @property
    def macro_f1(self) -> float:
        return self.macro[2]

    @property
    def micro_f1(self) -> float:
        return self.micro[2]

    @property
    def weighted_f1(self) -> float:
        """Support-weighted mean of the per-class F1: what the paper's "Micro mean" rows hold."""
        return self.weighted[2]

    @property
    def uar(self) -> float:
        return self.macro[1]

    @property
    def war(self) -> float:
        return self.accuracy

    def row(self, name: str) -> tuple[float, float, float]:
        """(P, R, F1) of a class code or of "macro" / "micro" / "weighted"."""
        if name in ("macro", "micro", "weighted"):
            return getattr(self, name)
        i = self.classes.index(name)
        return self.precision[i], self.recall[i], self.f1[i]

    def to_dict(self) -> dict:
        """JSON-ready: the fields plus the headline numbers under their usual names."""
        return {
            **asdict(self),
            "macro_f1": self.macro_f1,
            "micro_f1": self.micro_f1,
            "weighted_f1": self.weighted_f1,
            "uar": self.uar,
            "war": self.war,
            "n": int(sum(self.support)),
        }


def evaluate_predictions(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str]) -> ClassificationReport:
    """Score class-index predictions against class-index truth for the task `classes`."""
    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(classes)
    if truth.ndim != 1 or truth.shape != pred.shape or truth.size == 0:
        raise ValueError(
            f"need two equally long, non-empty 1-D label arrays; got shapes {truth.shape} and {pred.shape}"
        )
    for name, values in (("y_true", truth), ("y_pred", pred)):
        if not np.issubdtype(values.dtype, np.integer) or values.min() < 0 or values.max() >= k:
            raise ValueError(
                f"{name} must hold class indices 0..{k - 1} for classes {tuple(classes)}; "
                f"got values {np.unique(values)[:10]}"
            )
    labels = list(range(k))

    def averaged(average: str | None) -> tuple:
        return precision_recall_fscore_support(truth, pred, labels=labels, average=average, zero_division=0)

    precision, recall, f1, support = averaged(None)
    return ClassificationReport(
        classes=tuple(classes),
        precision=tuple(float(x) for x in precision),
        recall=tuple(float(x) for x in recall),
        f1=tuple(float(x) for x in f1),
        support=tuple(int(x) for x in support),
        macro=_triple(averaged("macro")),
        micro=_triple(averaged("micro")),
        weighted=_triple(averaged("weighted")),
        accuracy=float(accuracy_score(truth, pred)),
        confusion=tuple(tuple(int(x) for x in row) for row in confusion_matrix(truth, pred, labels=labels)),
    )


def markdown_table(
    reports: Mapping[str, ClassificationReport],
    paper: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
) -> str:
    """A Markdown table shaped like the paper's Tables 1-3, in percent.

    reports: column group → report, e.g. {"Before": r0, "After": r1}; all share one class tuple.
    paper: the same groups → row → (P, R, F1) in percent, rows keyed by class code or "macro" /
    "micro" / "weighted"; printed beside ours ("-" where the paper has no number).
    Rows: one per class (P/R/F1), then the macro, micro and weighted means.
    """
    if not reports:
        raise ValueError("markdown_table needs at least one report")
    classes = next(iter(reports.values())).classes
    if any(r.classes != classes for r in reports.values()):
        raise ValueError(f"reports cover different classes: {[r.classes for r in reports.values()]}")
    paper = paper or {}
    columns = [  # (group, metric index, from the paper?), grouped by metric as the paper does
        (group, m, from_paper)
        for m in range(3)
        for group in reports
        for from_paper in ((False, True) if group in paper else (False,))
    ]

    def cell(row: str, group: str, m: int, from_paper: bool) -> str:
        if not from_paper:
            return _percent(reports[group].row(row)[m])
        values = paper[group].get(row)
        return "-" if values is None else f"{values[m]:.1f}"

    header = ["Emotion"] + [f"{('P', 'R', 'F1')[m]} {g}{' paper' if p else ''} [%]" for g, m, p in columns]
    rows = [(EMOTION_NAMES.get(c, c), c) for c in classes] + [(label, key) for key, label in _AVERAGES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([label, *(cell(key, *column) for column in columns)]) + " |" for label, key in rows]
    return "\n".join(lines) + "\n"


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Write a confusion-matrix PNG: colour = share of the true class (row), text = clip count.

    Row normalisation makes rare classes as readable as frequent ones; the counts keep the sizes.
    The figure is built without pyplot, so no global figure state or display is touched.
    """
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=int)
    if counts.shape != (len(classes), len(classes)):
        raise ValueError(
            f"confusion matrix of shape {counts.shape} does not fit {len(classes)} classes {tuple(classes)}"
        )
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    size = 1.2 + 0.8 * len(classes)
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of true class")
    ax.set(
        xticks=range(len(classes)),
        yticks=range(len(classes)),
        xticklabels=classes,
        yticklabels=classes,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
    fig.tight_layout()
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    return atomic_write_bytes(path, buffer.getvalue())


def _triple(scores: tuple) -> tuple[float, float, float]:
    return float(scores[0]), float(scores[1]), float(scores[2])


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}"
