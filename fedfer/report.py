"""The results of one federated run: summary.json, report.md and plots, from what the server logged.

Inputs (all in the run directory): `subjects.json` (partition order), `server/rounds.json` (bytes,
seconds, client evaluations per round), `server/central_round_<r>.json` (the central v() on every
subject's labelled clips). The paper's numbers are printed beside ours.
"""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import numpy as np

from fedfer.evaluation import report_from_confusion
from fedfer.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from fedfer.metrics import markdown_table, plot_confusion

# Salman & Busso (ICMI 2022), CREMA-D 6-class within corpus, percent (Tables 2 and 6).
PAPER = {
    "central_before": {"macro": 56.0, "micro": 59.5},
    "personalized": {"macro": 58.8, "micro": 64.5},
    "central_after": {"macro": 57.1, "micro": 60.9},
    "subjects": {"improved": 23, "unchanged": 4, "worse": 4, "mean_micro_gain": 4.6},
}
MB = 1e6


def _read(path: Path):
    return json.loads(path.read_text())


def _f1s(report) -> dict:
    return {"macro_f1": report.macro_f1, "micro_f1": report.micro_f1}


def collect(run_dir: Path) -> tuple[dict, dict]:
    """Build summary.json's content; also returns the reports and matrices the plots need."""
    subject_dirs = [Path(p) for p in _read(run_dir / "subjects.json")]
    subjects = [d.name for d in subject_dirs]
    classes = tuple(_read(subject_dirs[0] / "subject.json")["classes"])
    rounds = _read(run_dir / "server" / "rounds.json")
    last_round = max(r["round"] for r in rounds)
    before = _read(run_dir / "server" / "central_round_0.json")
    after = _read(run_dir / "server" / f"central_round_{last_round}.json")
    k = len(classes)

    def matrix(flat) -> np.ndarray:
        return np.asarray(flat, dtype=np.int64).reshape(k, k)

    final_eval = {}
    for client in rounds[-1]["clients"].values():
        if "evaluate" in client:
            final_eval[subjects[int(client["evaluate"]["partition-id"])]] = client["evaluate"]
    missing = sorted(set(subjects) - set(final_eval))
    if missing:
        raise RuntimeError(f"no final evaluation from subjects {missing}; see {run_dir / 'logs' / 'flower.log'}")

    personal_total = sum(matrix(e["cm-personal"]) for e in final_eval.values())
    pseudo_total = sum(matrix(e["cm-pseudo"]) for e in final_eval.values())
    reports = {
        "central_before": report_from_confusion(matrix(before["overall"]["confusion"]), classes),
        "personalized": report_from_confusion(personal_total, classes),
        "central_after": report_from_confusion(matrix(after["overall"]["confusion"]), classes),
    }
    per_subject = []
    for s in subjects:
        b = report_from_confusion(matrix(before["per_subject"][s]), classes)
        a = report_from_confusion(matrix(final_eval[s]["cm-personal"]), classes)
        per_subject.append({"subject": s, "before": _f1s(b), "after": _f1s(a), "clips": int(sum(b.support)), "selected": int(matrix(final_eval[s]["cm-pseudo"]).sum())})
    gains = np.array([p["after"]["micro_f1"] - p["before"]["micro_f1"] for p in per_subject])
    summary = {
        "classes": list(classes),
        **{name: r.to_dict() for name, r in reports.items()},
        "per_subject": per_subject,
        "subjects_change": {"improved": int((gains > 1e-9).sum()), "unchanged": int((np.abs(gains) <= 1e-9).sum()), "worse": int((gains < -1e-9).sum()), "mean_micro_gain": float(gains.mean())},
        "pseudo_labels": pseudo_label_quality(pseudo_total, classes),
        "rounds": [round_entry(r, subjects) for r in rounds],
        "paper": PAPER,
    }
    return summary, {"reports": reports, "gains": gains}


def pseudo_label_quality(matrix: np.ndarray, classes: tuple[str, ...]) -> dict:
    """How many videos each class selected and how many of those were right (rows = truth, columns = pseudo label)."""
    selected = matrix.sum(axis=0)
    correct = np.diag(matrix)
    return {
        "selected_per_class": dict(zip(classes, selected.tolist())),
        "precision_per_class": {c: (float(correct[i] / selected[i]) if selected[i] else None) for i, c in enumerate(classes)},
        "accuracy": float(correct.sum() / selected.sum()) if selected.sum() else None,
        "selected_total": int(selected.sum()),
    }


def round_entry(r: dict, subjects: list[str]) -> dict:
    """Bytes per subject (node ids mapped through the partition each node reported) and totals."""
    name = {}
    for node, client in r["clients"].items():
        metrics = client.get("train") or client.get("evaluate")
        if metrics is not None:
            name[node] = subjects[int(metrics["partition-id"])]
    up = {name.get(n, n): b for n, b in r["bytes_up"].items()}
    down = {name.get(n, n): b for n, b in r["bytes_down"].items()}
    selected = {name.get(n, n): int(c["train"]["num-examples"]) for n, c in r["clients"].items() if "train" in c}
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
    }


def markdown(summary: dict, reports: dict, extra: dict) -> str:
    p = PAPER
    change = summary["subjects_change"]

    def pct(x: float) -> str:
        return f"{100 * x:.1f}"

    lines = [
        f"# fedfer run report ({extra.get('mode', 'simulation')})",
        "",
        f"{len(summary['per_subject'])} subjects, {len(summary['rounds'])} rounds, classes {', '.join(summary['classes'])}.",
        "",
        "## Personalized local models vs the central model (paper Table 2)",
        "",
        markdown_table({"central": reports["central_before"], "personalized": reports["personalized"]}),
        "| model | macro F1 | paper | micro F1 | paper |",
        "|---|---|---|---|---|",
    ]
    for key, label in (("central_before", "central model (before)"), ("personalized", "personalized local models"), ("central_after", "central model after FedAvg")):
        lines.append(f"| {label} | {pct(summary[key]['macro_f1'])} | {p[key]['macro']} | {pct(summary[key]['micro_f1'])} | {p[key]['micro']} |")
    lines += [
        "",
        "## Central model after FedAvg (paper Table 6)",
        "",
        markdown_table({"before": reports["central_before"], "after FedAvg": reports["central_after"]}),
        "## Subjects (micro F1, personalized vs central)",
        "",
        f"{change['improved']} improved, {change['unchanged']} unchanged, {change['worse']} worse; mean gain {100 * change['mean_micro_gain']:+.1f} points "
        f"(paper: {p['subjects']['improved']} / {p['subjects']['unchanged']} / {p['subjects']['worse']}, {p['subjects']['mean_micro_gain']:+.1f}). See `subject_gains.png`.",
        "",
        "| subject | clips | selected | micro before | micro after | macro before | macro after |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary["per_subject"]:
        lines.append(f"| {s['subject']} | {s['clips']} | {s['selected']} | {pct(s['before']['micro_f1'])} | {pct(s['after']['micro_f1'])} | {pct(s['before']['macro_f1'])} | {pct(s['after']['macro_f1'])} |")
    q = summary["pseudo_labels"]
    lines += ["", "## Pseudo labels (what the clients fine-tuned on; counts only)", "", "| class | selected | correct share |", "|---|---|---|"]
    for c in summary["classes"]:
        prec = q["precision_per_class"][c]
        lines.append(f"| {c} | {q['selected_per_class'][c]} | {'-' if prec is None else pct(prec)} |")
    lines += [f"| all | {q['selected_total']} | {'-' if q['accuracy'] is None else pct(q['accuracy'])} |", ""]
    lines += ["## Communication and time per round", "", "| round | seconds | MB up / client | MB down / client | MB up total | MB down total |", "|---|---|---|---|---|---|"]
    for r in summary["rounds"]:
        lines.append(f"| {r['round']} | {r['seconds']:.1f} | {r['bytes_up_per_client_mean'] / MB:.3f} | {r['bytes_down_per_client_mean'] / MB:.3f} | {r['bytes_up_total'] / MB:.2f} | {r['bytes_down_total'] / MB:.2f} |")
    lines += ["", "Bytes are the sizes of the serialized Flower messages (v() only: 211,782 float32 values, about 0.85 MB)."]
    return "\n".join(lines) + "\n"


def plot_gains(summary: dict, path: Path) -> None:
    """Per-subject micro-F1 gain of the personalized model over the central one (the paper's Figure 3)."""
    from matplotlib.figure import Figure

    subjects = sorted(summary["per_subject"], key=lambda s: s["after"]["micro_f1"] - s["before"]["micro_f1"])
    gains = [100 * (s["after"]["micro_f1"] - s["before"]["micro_f1"]) for s in subjects]
    fig = Figure(figsize=(max(6, 0.3 * len(gains) + 2), 3.8))
    ax = fig.add_subplot()
    ax.bar(range(len(gains)), gains, color=["tab:green" if g > 0 else "tab:red" if g < 0 else "tab:gray" for g in gains])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(xticks=range(len(gains)), xlabel="subject", ylabel="micro F1 gain [points]", title="Personalized vs central model, per subject")
    ax.set_xticklabels([s["subject"] for s in subjects], rotation=90, fontsize=7)
    fig.tight_layout()
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    atomic_write_bytes(path, buffer.getvalue())


def write_report(run_dir: Path, extra: dict) -> dict:
    """Write summary.json, report.md, subject_gains.png and confusion_*.png into `run_dir`."""
    summary, parts = collect(run_dir)
    summary.update(extra)
    atomic_write_json(run_dir / "summary.json", summary)
    atomic_write_text(run_dir / "report.md", markdown(summary, parts["reports"], extra))
    plot_gains(summary, run_dir / "subject_gains.png")
    for key, report in parts["reports"].items():
        plot_confusion(report.confusion, report.classes, run_dir / f"confusion_{key}.png", title=key.replace("_", " "))
    return summary
