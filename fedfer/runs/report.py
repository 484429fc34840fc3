"""The report of one federated run: summary.json, report.md and plots, from its records
(`fedfer.runs.records`, which also says what each model row is). The paper's numbers are printed
beside ours, like for like.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from fedfer.evaluation.metrics import ClassificationReport, markdown_table, plot_confusion
from fedfer.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from fedfer.rundir import RunDir
from fedfer.runs.records import PAPER, TALLY_METRIC, UNCHANGED, collect

MB = 1e6


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
    missing = bool(summary.get("subjects_missing"))
    for key, label in rows:
        if key not in summary:
            continue
        s, p = summary[key], PAPER.get(key, {})
        if key == "central_before" and missing and "central_before_answered" in summary:
            # a row never mixes subject sets: beside the personalized row, the subjects that answered
            s, label = summary["central_before_answered"], f"{label}, on the subjects that answered"
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
    """report.md: the headline, the paper's tables, subjects, pseudo labels, communication, failures."""
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
    lines += paper_table_lines(summary, reports) + subject_lines(summary) + pseudo_label_lines(summary)
    lines += communication_lines(summary["rounds"]) + failure_lines(summary["rounds"])
    lines += adapt_lines(summary.get("adapt_f", []), extra)
    return "\n".join(lines) + "\n"


def paper_table_lines(summary: dict, reports: dict[str, ClassificationReport]) -> list[str]:
    """Tables 2 and 6 of the paper, on the subjects that answered."""
    lines = []
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
    return lines


def subject_lines(summary: dict) -> list[str]:
    """The improved / unchanged / worse tally and one row per subject (none without client evaluations)."""
    if "subjects_change" not in summary:
        return []
    p = PAPER
    change, acc = summary["subjects_change"], summary["subjects_change_accuracy"]
    lines = [
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
    return lines


def pseudo_label_lines(summary: dict) -> list[str]:
    """How many videos round 1 selected per class and how many of their pseudo labels were right."""
    q = summary["pseudo_labels"]
    lines = [
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
    return lines


def communication_lines(rounds: list[dict]) -> list[str]:
    """Seconds and bytes of every round."""
    lines = [
        "## Communication and time per round",
        "",
        "| round | seconds | MB up / client | MB down / client | MB up total | MB down total | failed clients |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        lines.append(
            f"| {r['round']} | {r['seconds']:.1f} | {r['bytes_up_per_client_mean'] / MB:.3f} "
            f"| {r['bytes_down_per_client_mean'] / MB:.3f} | {r['bytes_up_total'] / MB:.2f} "
            f"| {r['bytes_down_total'] / MB:.2f} | {len(r['failures'])} |"
        )
    return [
        *lines,
        "",
        "Bytes are the sizes of the serialized Flower messages (v() only: 211,782 float32 values, about 0.85 MB).",
    ]


def adapt_lines(rounds: list[dict], extra: dict) -> list[str]:
    """The rounds that adapted f() before the federation above (`adapt-f-rounds`); none: no lines."""
    if not rounds:
        return []
    lines = [
        "",
        "## Adapting f() first (federated contrastive rounds)",
        "",
        "| round | seconds | MB up / client | MB down / client | face crops | mean NT-Xent loss | failed clients |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        loss = "–" if r["loss_mean"] is None else f"{r['loss_mean']:.3f}"
        lines.append(
            f"| {r['round']} | {r['seconds']:.1f} | {r['bytes_up_per_client_mean'] / MB:.3f} "
            f"| {r['bytes_down_per_client_mean'] / MB:.3f} | {sum(r['face_crops'].values())} | {loss} "
            f"| {len(r['failures'])} |"
        )
    seconds = extra.get("adapt_f_seconds")
    took = f" Its federation took {seconds / 60:.1f} min." if seconds else ""
    return [*lines, "", f"Every table above was measured on the adapted f().{took}"]


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
