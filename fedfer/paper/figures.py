"""The grid's Markdown report and plots: every table beside the paper's numbers, with 95% CIs over
seeds, per-subject paired tests, sensitivity curves and what pseudo-label precision buys."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np

from fedfer.evaluation.stats import mean_ci, paired_gains
from fedfer.io import atomic_write_bytes

# The paper's numbers (percent): (macro F1, "micro" F1) per table and model. Table 6 is the
# after-FedAvg row of Tables 2 and 3; seed 002 is the partial-label follow-up on CREMA-D.
PAPER: dict[str, dict[str, tuple[float, float]]] = {
    "table2": {"central": (56.0, 59.5), "personalized": (58.8, 64.5), "after_fedavg": (57.1, 60.9)},
    "table3": {"central": (44.3, 52.6), "personalized": (46.6, 58.6), "after_fedavg": (45.8, 56.0)},
    "table4": {"central": (42.8, 49.3), "personalized": (55.9, 58.6)},
    "table5": {"central": (44.9, 50.1), "personalized": (46.1, 53.6)},
    "seed002": {"central": (60.4, 63.3), "after_fedavg": (61.9, 64.9)},
}
PAPER_SUBJECTS = "23 / 4 / 4, mean +4.6 micro F1 (CREMA-D, 31 subjects)"
MODELS: dict[str, str] = {
    "central": "central model (before)",
    "frame_mean_g": "frame-mean g() (the pseudo-labeller)",
    "personalized": "personalized local models (round 1)",
    "local_only": "local-only fine-tuning, no FedAvg (rounds × epochs)",
    "fedper": "FedPer (output layer kept local), after the rounds",
    "after_fedavg": "central model after FedAvg (Table 6)",
    "oracle": "oracle: true labels on the adaptation clips",
    "labeller_50": "simulated pseudo-labeller, 50% correct",
    "labeller_70": "simulated pseudo-labeller, 70% correct",
    "labeller_90": "simulated pseudo-labeller, 90% correct",
}
PROTOCOL_TEXT = {
    "transductive": "adapt and test on the same clips, as the paper",
    "held-out": "adapt on half of each subject's clips, test on the other half, as seed 002",
}
SWEEP_TITLES = {
    "max_per_class": "P (videos per class)",
    "p_threshold": "p_threshold",
    "epochs": "local epochs",
    "lr": "local learning rate",
    "rounds": "FedAvg rounds",
}


def paper_key(table: str) -> str:
    return table.split("-")[0]


def _paper(table: str, model: str) -> str:
    macro_micro = PAPER.get(paper_key(table), {}).get(model)
    return f"{macro_micro[0]:.1f} / {macro_micro[1]:.1f}" if macro_micro else ""


def model_rows(table: str, seeds: list[dict]) -> list[str]:
    """One row per model: macro F1, weighted F1 (paper "micro"), accuracy as mean ± 95% CI over seeds,
    and its macro F1 minus the central model's, paired per seed: a seed's split and central training
    move every model's level together, so the paired interval is the one that says whether a model helps."""
    lines = [
        '| model | macro F1 | weighted F1 (paper "micro") | accuracy | macro F1 − central, paired '
        "| paper macro / micro |",
        "|---|---|---|---|---|---|",
    ]
    for model, title in MODELS.items():
        if model not in seeds[0]["pooled"]:
            continue
        cells = [
            mean_ci([s["pooled"][model][metric] for s in seeds]).format()
            for metric in ("macro_f1", "weighted_f1", "accuracy")
        ]
        paired = [s["pooled"][model]["macro_f1"] - s["pooled"]["central"]["macro_f1"] for s in seeds]
        cells.append("" if model == "central" else mean_ci(paired).format(signed=True))
        lines.append(f"| {title} | {' | '.join(cells)} | {_paper(table, model)} |")
    return lines


def gain_rows(seeds: list[dict], threshold: float) -> list[str]:
    """Per seed and comparison: improved / unchanged / worse, mean gain and Wilcoxon p (weighted F1)."""
    lines = [
        "| seed | comparison | improved / unchanged / worse | mean gain | Wilcoxon p | pseudo labels correct "
        "| selected |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in seeds:
        for model in ("personalized", "after_fedavg", "fedper", "local_only"):
            g = paired_gains(s["per_subject"]["central"], s["per_subject"][model], threshold)
            lines.append(
                f"| {s['seed']} | {model} − central | {g.tally()} | {100 * g.mean:+.1f} | {g.p_value:.3f} "
                f"| {100 * s['pseudo_precision_pooled']:.0f}% | {sum(s['selected'])} |"
            )
    return lines


def table_section(
    table: str, spec_title: str, protocol: str, labels: str, seeds: list[dict], threshold: float
) -> list[str]:
    settings = seeds[0]["settings"]
    lines = [
        f"## {table}: {spec_title}",
        "",
        f"Protocol **{protocol}** ({PROTOCOL_TEXT[protocol]}); "
        f"labels: {labels}; {len(seeds[0]['subjects'])} subjects; seeds {', '.join(str(s['seed']) for s in seeds)}; "
        f"P = {settings['P']}, p_threshold = {settings['p_threshold']}, local epochs {settings['epochs']}, "
        f"lr {settings['lr']:g}, {settings['rounds']} rounds. Percent, mean ± 95% t-interval over seeds.",
        "",
        *model_rows(table, seeds),
        "",
        f"Per-subject weighted-F1 gains (unchanged: |gain| ≤ {threshold:g}; paper Table 2: {PAPER_SUBJECTS}):",
        "",
        *gain_rows(seeds, threshold),
        "",
    ]
    return lines


def _png(fig) -> bytes:
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def plot_subject_gains(seed: dict, path: Path, title: str) -> None:
    """Figure 3: per-subject weighted-F1 gain of the personalized model, sorted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gains = 100 * (np.array(seed["per_subject"]["personalized"]) - np.array(seed["per_subject"]["central"]))
    order = np.argsort(gains)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar(range(len(gains)), gains[order], color=["tab:green" if g > 0 else "tab:red" for g in gains[order]])
    ax.set_xticks(range(len(gains)), [seed["subjects"][i] for i in order], rotation=90, fontsize=6)
    ax.set_ylabel("weighted-F1 gain (points)")
    ax.set_title(title, fontsize=9)
    atomic_write_bytes(path, _png(fig))
    plt.close(fig)


def plot_precision_vs_gain(results: dict[str, list[dict]], path: Path) -> None:
    """Each subject of every table and seed: its pseudo-label precision against its gain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for table, seeds in results.items():
        x = np.concatenate([s["pseudo_precision"] for s in seeds])
        y = np.concatenate(
            [np.array(s["per_subject"]["personalized"]) - np.array(s["per_subject"]["central"]) for s in seeds]
        )
        ax.scatter(100 * x, 100 * y, s=10, label=table, alpha=0.7)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("pseudo labels correct (%)")
    ax.set_ylabel("personalized − central weighted F1 (points)")
    ax.legend(fontsize=7)
    atomic_write_bytes(path, _png(fig))
    plt.close(fig)


def plot_sweep(parameter: str, points: list[dict], path: Path) -> None:
    """Personalized / after-FedAvg macro F1 and pseudo-label precision against one setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [str(p["value"]) for p in points]
    fig, ax = plt.subplots(figsize=(4, 3))
    for key, label in (
        ("central_macro_f1", "central"),
        ("personalized_macro_f1", "personalized"),
        ("after_fedavg_macro_f1", "after FedAvg"),
        ("pseudo_precision", "pseudo-label precision"),
    ):
        ax.plot(
            x, [100 * p[key] for p in points], marker="o", label=label, ls="--" if key == "pseudo_precision" else "-"
        )
    ax.set_xlabel(SWEEP_TITLES.get(parameter, parameter))
    ax.set_ylabel("percent")
    ax.legend(fontsize=7)
    atomic_write_bytes(path, _png(fig))
    plt.close(fig)


def precision_correlation(results: dict[str, list[dict]]) -> list[str]:
    """Spearman correlation of per-subject pseudo-label precision with the personalization gain."""
    from scipy.stats import spearmanr

    lines = ["| table | subjects × seeds | Spearman ρ (precision vs gain) | p |", "|---|---|---|---|"]
    for table, seeds in results.items():
        x = np.concatenate([s["pseudo_precision"] for s in seeds])
        y = np.concatenate(
            [np.array(s["per_subject"]["personalized"]) - np.array(s["per_subject"]["central"]) for s in seeds]
        )
        keep = ~np.isnan(x)
        if keep.sum() < 3:
            continue
        rho = spearmanr(x[keep], y[keep])
        lines.append(f"| {table} | {int(keep.sum())} | {rho.statistic:+.2f} | {rho.pvalue:.3f} |")
    return lines
