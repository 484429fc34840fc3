"""The results of one federated run: summary.json, report.md and plots, from what the server logged.

Inputs (all in the run directory): the subjects file (partition order), `server/rounds.json` (bytes,
seconds, client replies per round) and, where the server scored the central v(),
`server/central_round_<r>.json`. The paper's numbers are printed beside ours, like for like.

What each row is, as in the paper:
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
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

from fedfer.evaluation.metrics import ClassificationReport, markdown_table, plot_confusion
from fedfer.evaluation.scoring import report_from_confusion
from fedfer.experiment.rundir import RunDir
from fedfer.federation.protocol import CM_PERSONAL, CM_PSEUDO, NUM_EXAMPLES, PARTITION_ID
from fedfer.federation.subject import MANIFEST, read_subjects_file
from fedfer.io import atomic_write_bytes, atomic_write_json, atomic_write_text

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
MB = 1e6


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
    summary["paper"] = PAPER
    return summary, reports


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


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


NO_PSEUDO_LABELS = (
    "subjects with no video above the p-threshold in round 1 (they kept the central v(); lower --p-threshold "
    "to include them)"
)


MODEL_ROWS = {  # summary key → label, in the order the tables list them
    "central_before": "central model (before)",
    "personalized": "personalized local models (round 1, from the central model)",
    "central_after": "central model after FedAvg",
}


def headline_table(summary: dict) -> list[str]:
    """Macro F1 and the paper's "Micro mean" (support-weighted F1) beside the paper's, accuracy apart."""
    lines = [
        '| model | macro F1 | paper | weighted F1 (paper\'s "micro mean") | paper | accuracy (= micro F1) |',
        "|---|---|---|---|---|---|",
    ]
    later = sorted((int(key.rsplit("_", 1)[1]), key) for key in summary if key.startswith("personalized_round_"))
    rows = [*MODEL_ROWS.items(), *((key, f"personalized after FedAvg round {r - 1} (round {r})") for r, key in later)]
    for key, label in rows:
        if key not in summary:
            continue
        s, p = summary[key], PAPER.get(key, {})
        paper = (p.get("macro", "-"), p.get("micro", "-"))
        lines.append(
            f"| {label} | {_pct(s['macro_f1'])} | {paper[0]} | {_pct(s['weighted_f1'])} | {paper[1]} "
            f"| {_pct(s['accuracy'])} |"
        )
    return lines


PROTOCOL_TEXT = {
    "transductive": "each subject adapted on all its clips and is scored on its labelled clips, the same ones "
    "(the paper)",
    "held-out": "each subject's clips were halved per label; it adapted on one half and is scored on the other "
    "(seed 002); the central model is scored on the same held-out clips",
}
CENTRAL_LABELS_TEXT = {
    "hard": "plurality labels (the paper)",
    "distribution": "vote distributions with the KL divergence (seed 002)",
}


def protocol_line(extra: dict) -> str:
    """Which protocol the run used and what its central v() learned from."""
    protocol, labels = extra["protocol"], extra.get("central_labels", "hard")
    return f"Protocol: **{protocol}**: {PROTOCOL_TEXT[protocol]}. Central v() trained on {CENTRAL_LABELS_TEXT[labels]}."


def markdown(summary: dict, reports: dict[str, ClassificationReport], extra: dict) -> str:
    p = PAPER
    lines = [
        f"# fedfer run report ({extra.get('mode', 'simulation')})",
        "",
        f"{summary['num_subjects']} subjects, "
        f"{len(summary['rounds'])} rounds, classes {', '.join(summary['classes'])}.",
        "",
        *(
            [f"Pseudo-labeller: **{extra['teacher']}** ({extra.get('teacher_reason', '')}).", ""]
            if "teacher" in extra
            else []
        ),
        *([protocol_line(extra), ""] if "protocol" in extra else []),
        "## Headline (paper Tables 2 and 6, like for like)",
        "",
        *headline_table(summary),
        "",
    ]
    if summary["subjects_missing"]:
        lines += [
            f"Subjects with no round-1 evaluation (their client failed): {', '.join(summary['subjects_missing'])}; "
            "Table 2 below compares the central model and the personalized models on the other subjects.",
            "",
        ]
    if "personalized" in reports and "central_before_answered" in reports:
        table = {"central": reports["central_before_answered"], "personalized": reports["personalized"]}
        lines += ["## Personalized local models vs the central model (paper Table 2)", "", markdown_table(table)]
    if "central_after" in reports:
        table = {"before": reports["central_before"], "after FedAvg": reports["central_after"]}
        lines += ["## Central model after FedAvg (paper Table 6)", "", markdown_table(table)]
    if "subjects_change" in summary:
        change, acc = summary["subjects_change"], summary["subjects_change_accuracy"]
        lines += [
            "## Subjects (round-1 personalized model vs the central model)",
            "",
            f'Weighted F1 (the paper\'s per-subject "micro F1"): {change["improved"]} improved, '
            f"{change['unchanged']} unchanged, {change['worse']} worse; mean gain {100 * change['mean_gain']:+.1f} "
            f"points (paper: {p['subjects']['improved']} / {p['subjects']['unchanged']} / {p['subjects']['worse']}, "
            f"{p['subjects']['mean_micro_gain']:+.1f}). Accuracy: {acc['improved']} / {acc['unchanged']} / "
            f"{acc['worse']}, mean {100 * acc['mean_gain']:+.1f}. Unchanged: a change of at most {UNCHANGED:g}. "
            "See `subject_gains.png`.",
            "",
            "| subject | clips | selected | weighted F1 before | after | accuracy before | after | macro F1 "
            "before | after |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in summary["per_subject"]:
            b, a = s["before"], s["after"]
            lines.append(
                f"| {s['subject']} | {s['clips']} | {s['selected']} | {_pct(b['weighted_f1'])} | "
                f"{_pct(a['weighted_f1'])} "
                f"| {_pct(b['accuracy'])} | {_pct(a['accuracy'])} | {_pct(b['macro_f1'])} | {_pct(a['macro_f1'])} |"
            )
    q = summary["pseudo_labels"]
    lines += [
        "",
        "## Pseudo labels of round 1 (what the clients fine-tuned on; counts only)",
        "",
        "| class | selected | correct share |",
        "|---|---|---|",
    ]
    for c in summary["classes"]:
        lines.append(f"| {c} | {q['selected_per_class'][c]} | {_pct(q['precision_per_class'][c])} |")
    lines += [f"| all | {q['selected_total']} | {_pct(q['accuracy'])} |", ""]
    if summary.get("subjects_without_pseudo_labels"):
        lines += [f"{NO_PSEUDO_LABELS}: {', '.join(summary['subjects_without_pseudo_labels'])}", ""]
    lines += [
        "## Communication and time per round",
        "",
        "| round | seconds | MB up / client | MB down / client | MB up total | MB down total | failed clients |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["rounds"]:
        lines.append(
            f"| {r['round']} | {r['seconds']:.1f} | {r['bytes_up_per_client_mean'] / MB:.3f} "
            f"| {r['bytes_down_per_client_mean'] / MB:.3f} | {r['bytes_up_total'] / MB:.2f} "
            f"| {r['bytes_down_total'] / MB:.2f} | {len(r['failures'])} |"
        )
    lines += [
        "",
        "Bytes are the sizes of the serialized Flower messages (v() only: 211,782 float32 values, about 0.85 MB).",
    ]
    lines += failure_lines(summary["rounds"])
    return "\n".join(lines) + "\n"


def failure_lines(rounds: list[dict]) -> list[str]:
    """The report's table of clients that failed or were refused, with the server's reason (none: no lines)."""
    rows = [
        f"| {r['round']} | {name} | {reason.replace('|', '/')} |"
        for r in rounds
        for name, reason in sorted(r["failures"].items())
    ]
    if not rows:
        return []
    return ["", "## Client failures", "", "| round | subject (or node) | reason |", "|---|---|---|", *rows]


def plot_gains(summary: dict, path: Path) -> None:
    """Per-subject weighted-F1 gain of the round-1 personalized model over the central one (paper Figure 3)."""
    from matplotlib.figure import Figure

    def gain(s: dict) -> float:
        return 100 * (s["after"][TALLY_METRIC] - s["before"][TALLY_METRIC])

    subjects = sorted(summary["per_subject"], key=gain)
    gains = [gain(s) for s in subjects]
    fig = Figure(figsize=(max(6, 0.3 * len(gains) + 2), 3.8))
    ax = fig.add_subplot()
    ax.bar(
        range(len(gains)), gains, color=["tab:green" if g > 0 else "tab:red" if g < 0 else "tab:gray" for g in gains]
    )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(xticks=range(len(gains)), xlabel="subject", ylabel="weighted F1 gain [points]")
    ax.set_title("Personalized (round 1) vs central model, per subject")
    ax.set_xticklabels([s["subject"] for s in subjects], rotation=90, fontsize=7)
    fig.tight_layout()
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    atomic_write_bytes(path, buffer.getvalue())


def write_report(run_dir: Path, extra: dict, subjects_file: Path | None = None) -> dict:
    """Write summary.json, report.md, subject_gains.png and confusion_*.png into `run_dir`.

    `subjects_file`: the run's subjects file when it is not the run folder's own (a prepared run
    that lives elsewhere)."""
    run = RunDir(run_dir)
    summary, reports = collect(run_dir, subjects_file)
    summary.update(extra)
    atomic_write_json(run.summary, summary)
    atomic_write_text(run.report, markdown(summary, reports, extra))
    if summary["per_subject"]:
        plot_gains(summary, run.gains_plot)
    for key in ("central_before", "personalized", "central_after"):
        if key in reports:
            plot_confusion(
                reports[key].confusion, reports[key].classes, run.confusion_plot(key), title=key.replace("_", " ")
            )
    return summary


def print_summary(summary: dict, report: Path) -> None:
    """The headline figures of a run on the terminal, like for like with the paper."""
    if "teacher" in summary:
        print(f"\npseudo-labeller: {summary['teacher']} ({summary.get('teacher_reason', '')})")
    if "protocol" in summary:
        print(protocol_line(summary).replace("**", ""))
    print("\n" + "\n".join(headline_table(summary)))
    for key, label in (("subjects_change", "weighted F1"), ("subjects_change_accuracy", "accuracy")):
        if key in summary:
            c = summary[key]
            print(f"subjects ({label}): {c['improved']} improved, {c['unchanged']} unchanged, {c['worse']} worse")
    if summary["subjects_missing"]:
        print(f"subjects whose client failed: {', '.join(summary['subjects_missing'])}")
    if summary.get("subjects_without_pseudo_labels"):
        print(f"{NO_PSEUDO_LABELS}: {', '.join(summary['subjects_without_pseudo_labels'])}")
    rounds = summary.get("rounds", [])
    if rounds:
        r = rounds[-1]
        up, down = r["bytes_up_per_client_mean"] / MB, r["bytes_down_per_client_mean"] / MB
        print(f"per client per round: {up:.3f} MB up, {down:.3f} MB down")
    print(f"report: {report}", flush=True)
