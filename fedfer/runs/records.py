"""A run's records read back and gathered: the subjects (partition order), the server's round log
(`server/rounds.json`: bytes, seconds, client replies) and, where the server scored the central v(),
`server/central_round_<r>.json`; `collect` turns them into the summary the report is written from.

What each model row is, as in the paper:
- **Table 2, personalized local models**: each subject's v() personalized *from the central model*,
  i.e. in round 1 (Sec. 5.2). A subject that selected no video keeps the central model there.
  Later rounds personalize from the previous round's FedAvg model; they are reported as extra rows
  ("personalized after FedAvg round r"), never as Table 2.
- **Table 6**: the central v() after the last FedAvg round, on the same labelled clips.
- **The paper's "Micro mean"** has precision ≠ recall, which a micro average (= accuracy) cannot:
  it is the support-weighted mean, so it is compared with our `weighted_f1`; accuracy has a column
  of its own. The subject tally uses the same weighted F1, the paper's per-subject quantity.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fedfer.data.subject import MANIFEST, read_subjects_file
from fedfer.evaluation.metrics import ClassificationReport
from fedfer.evaluation.scoring import report_from_confusion
from fedfer.federation.protocol import CM_PERSONAL, CM_PSEUDO, NUM_EXAMPLES, PARTITION_ID, TRAIN_LOSS
from fedfer.rundir import RunDir

# Salman & Busso (ICMI 2022), CREMA-D 6-class within corpus, percent (Tables 2 and 6). "micro" is
# the paper's "Micro mean" row: a support-weighted F1 (see the module docstring).
PAPER = {
    "central_before": {"macro": 56.0, "micro": 59.5},
    "personalized": {"macro": 58.8, "micro": 64.5},
    "central_after": {"macro": 57.1, "micro": 60.9},
    "subjects": {"improved": 23, "unchanged": 4, "worse": 4, "mean_micro_gain": 4.6},
}
TALLY_METRIC = "weighted_f1"  # per-subject quantity of the improved/unchanged/worse tally (paper: "micro F1")
UNCHANGED = 1e-9  # a subject whose score moved by no more than this is unchanged


def _read(path: Path) -> Any:
    return json.loads(path.read_text())


def _scores(report: ClassificationReport) -> dict[str, float]:
    return {"macro_f1": report.macro_f1, "weighted_f1": report.weighted_f1, "accuracy": report.accuracy}


def _tally(before: dict[str, ClassificationReport], after: dict[str, ClassificationReport], metric: str) -> dict:
    gains = np.array([getattr(after[s], metric) - getattr(before[s], metric) for s in after])
    return {
        "metric": metric,
        "threshold": UNCHANGED,
        "improved": int((gains > UNCHANGED).sum()),
        "unchanged": int((np.abs(gains) <= UNCHANGED).sum()),
        "worse": int((gains < -UNCHANGED).sum()),
        "mean_gain": float(gains.mean()) if len(gains) else 0.0,
    }


def node_subjects(r: dict, subjects: list[str]) -> dict[str, str]:
    """Node id → subject, through the partition each node reported in its replies of round `r`."""
    names = {}
    for node, client in r["clients"].items():
        metrics = client.get("train") or client.get("evaluate")
        if metrics is not None:
            names[node] = subjects[int(metrics[PARTITION_ID])]
    return names


def client_evaluations(rounds: list[dict], subjects: list[str]) -> dict[int, dict[str, dict]]:
    """{round: {subject: its evaluate reply's metrics}} for the replies that arrived."""
    out: dict[int, dict[str, dict]] = {}
    for r in rounds:
        names = node_subjects(r, subjects)
        out[r["round"]] = {names[n]: c["evaluate"] for n, c in r["clients"].items() if "evaluate" in c}
    return out


def collect(run_dir: Path, subjects_file: Path | None = None) -> tuple[dict, dict[str, ClassificationReport]]:
    """Build summary.json's content; also returns the pooled reports the tables and plots show."""
    run = RunDir(run_dir)
    subject_dirs = read_subjects_file(subjects_file or run.subjects_file)
    subjects = [d.name for d in subject_dirs]
    classes = tuple(_read(subject_dirs[0] / MANIFEST)["classes"])
    k = len(classes)
    rounds = _read(run.rounds)
    last = max(r["round"] for r in rounds)

    def pooled(matrices) -> np.ndarray:
        """(K, K) sum of flattened or square confusion matrices."""
        return sum((np.asarray(m, dtype=np.int64).reshape(k, k) for m in matrices), np.zeros((k, k), np.int64))

    def report(matrices) -> ClassificationReport:
        return report_from_confusion(pooled(matrices), classes)

    entries = [round_entry(r, subjects) for r in rounds]
    evaluations = client_evaluations(rounds, subjects)
    first = evaluations.get(1, {})
    failed = {name for e in entries if e["round"] == 1 for name in e["failures"]}
    answered = [s for s in subjects if s in first and s not in failed]  # trained and scored in round 1
    central = (_read(run.central_eval(0)), _read(run.central_eval(last))) if run.central_eval(0).is_file() else None
    if central is not None:  # the server scored the central v() (studies with labels); it may miss a subject
        answered = [s for s in answered if s in central[0]["per_subject"]]
    reports: dict[str, ClassificationReport] = {}
    missing = sorted(set(subjects) - set(answered))
    summary: dict[str, Any] = {"classes": list(classes), "num_subjects": len(subjects), "subjects_missing": missing}
    if answered:
        reports["personalized"] = report(first[s][CM_PERSONAL] for s in answered)
    for r in sorted(evaluations):
        if r > 1 and evaluations[r]:
            reports[f"personalized_round_{r}"] = report(e[CM_PERSONAL] for e in evaluations[r].values())

    per_subject = []
    if central is not None:
        before, after = central
        scored = [s for s in subjects if s in before["per_subject"]]
        reports["central_before"] = report(before["per_subject"][s] for s in scored)
        reports["central_after"] = report(after["per_subject"][s] for s in scored)
        if answered:  # Table 2 compares like with like: the central model on the subjects that answered
            reports["central_before_answered"] = report(before["per_subject"][s] for s in answered)
        own_before = {s: report([before["per_subject"][s]]) for s in answered}
        own_after = {s: report([first[s][CM_PERSONAL]]) for s in answered}
        for s in answered:
            selected = int(np.asarray(first[s][CM_PSEUDO]).sum())
            clips = int(sum(own_before[s].support))
            row = {"subject": s, "clips": clips, "selected": selected}
            per_subject.append({**row, "before": _scores(own_before[s]), "after": _scores(own_after[s])})
        summary["subjects_change"] = _tally(own_before, own_after, TALLY_METRIC)
        summary["subjects_change_accuracy"] = _tally(own_before, own_after, "accuracy")
    summary.update({name: r.to_dict() for name, r in reports.items()})
    summary["per_subject"] = per_subject
    summary["pseudo_labels"] = pseudo_label_quality(pooled(first[s][CM_PSEUDO] for s in answered), classes)
    summary["rounds"] = entries
    # Subjects that trained on nothing: no video reached the p-threshold, their v() stayed the central one.
    summary["subjects_without_pseudo_labels"] = sorted(
        name for e in entries if e["round"] == 1 for name, n in e["selected_videos"].items() if n == 0
    )
    if run.adapt_rounds.is_file():
        summary["adapt_f"] = [adapt_entry(r, subjects) for r in _read(run.adapt_rounds)]
    summary["paper"] = PAPER
    return summary, reports


def adapt_entry(r: dict, subjects: list[str]) -> dict:
    """A round of f()'s adaptation: seconds, bytes per client, face crops trained on and the mean NT-Xent loss."""
    entry = round_entry(r, subjects)
    trained = [c["train"] for c in r["clients"].values() if "train" in c]
    crops = entry.pop("selected_videos")
    entry["face_crops"] = crops
    entry["loss_mean"] = float(np.mean([t[TRAIN_LOSS] for t in trained])) if trained else None
    return entry


def pseudo_label_quality(matrix: Any, classes: tuple[str, ...]) -> dict:
    """How many videos each class selected and how many of those were right (rows = truth, columns = pseudo label)."""
    matrix = np.asarray(matrix)
    selected = matrix.sum(axis=0)
    correct = np.diag(matrix)
    return {
        "selected_per_class": dict(zip(classes, selected.tolist())),
        "precision_per_class": {
            c: (float(correct[i] / selected[i]) if selected[i] else None) for i, c in enumerate(classes)
        },
        "accuracy": float(correct.sum() / selected.sum()) if selected.sum() else None,
        "selected_total": int(selected.sum()),
    }


def round_entry(r: dict, subjects: list[str]) -> dict:
    """Bytes per subject (node ids mapped through the partition each node reported) and totals."""
    name = node_subjects(r, subjects)
    up = {name.get(n, n): b for n, b in r["bytes_up"].items()}
    down = {name.get(n, n): b for n, b in r["bytes_down"].items()}
    selected = {name.get(n, n): int(c["train"][NUM_EXAMPLES]) for n, c in r["clients"].items() if "train" in c}
    failed = {name.get(n, n): c["error"] for n, c in r["clients"].items() if "error" in c}
    return {
        "round": r["round"],
        "seconds": r["seconds"],
        "bytes_up": up,
        "bytes_down": down,
        "bytes_up_total": sum(up.values()),
        "bytes_down_total": sum(down.values()),
        "bytes_up_per_client_mean": float(np.mean(list(up.values()))) if up else 0.0,
        "bytes_down_per_client_mean": float(np.mean(list(down.values()))) if down else 0.0,
        "selected_videos": selected,
        "failures": failed,
    }
