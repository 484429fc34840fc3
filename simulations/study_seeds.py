"""`fedfer run` over several seeds (and BatchNorm conventions, and teachers): the effects with 95% CIs.

Each seed draws its own actor split, central training and personalization on the same rendered
world (`--world-seed`); features are computed once and shared. With several `--batchnorm-styles`
or `--teachers` each variant runs on the same seeds, so the table compares them like for like.

    python simulations/study_seeds.py --world small --seeds 0 1 2 --batchnorm-styles keras torch \\
        --out results/study_seeds.md
    python simulations/study_seeds.py --world small --seeds 0 1 2 --teachers affectnet crema-frames \\
        --out results/study_teachers_federated.md
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats
from study_args import study_parser

from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.rundir import RunDir
from fedfer.runs.options import options_from_args
from fedfer.runs.simulate import simulate

ROWS = (
    ("central_before", "central model (before)"),
    ("personalized", "personalized local models (round 1)"),
    ("central_after", "central model after FedAvg"),
)
METRICS = (("macro_f1", "macro F1"), ("weighted_f1", 'weighted F1 (paper "micro")'), ("accuracy", "accuracy"))


def mean_ci(values: list[float]) -> str:
    """`mean ± half-width` of the 95% t-interval, in percent."""
    x = 100 * np.asarray(values)
    if len(x) < 2:
        return f"{x.mean():.1f}"
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return f"{x.mean():.1f} ± {half:.1f}"


def table(runs: dict[str, dict[int, dict]]) -> list[str]:
    paper = next(iter(next(iter(runs.values())).values()))["paper"]
    lines = [
        "| variant | model | " + " | ".join(label for _, label in METRICS) + " | paper macro / micro |",
        "|---" * (3 + len(METRICS)) + "|",
    ]
    for variant, summaries in runs.items():
        for key, label in ROWS:
            cells = [mean_ci([s[key][m] for s in summaries.values()]) for m, _ in METRICS]
            paper_cell = f"{paper[key]['macro']} / {paper[key]['micro']}"
            lines.append(f"| {variant} | {label} | {' | '.join(cells)} | {paper_cell} |")
    return lines


def gains(runs: dict[str, dict[int, dict]]) -> list[str]:
    """Per seed: the subject tally (weighted F1, the paper's per-subject quantity) and the pseudo labels."""
    lines = [
        "| variant | seed | improved / unchanged / worse | mean gain | pseudo-label accuracy | selected |",
        "|---|---|---|---|---|---|",
    ]
    for variant, summaries in runs.items():
        for seed, s in summaries.items():
            c, q = s["subjects_change"], s["pseudo_labels"]
            lines.append(
                f"| {variant} | {seed} | {c['improved']} / {c['unchanged']} / {c['worse']} "
                f"| {100 * c['mean_gain']:+.1f} "
                f"| {100 * (q['accuracy'] or 0):.1f} | {q['selected_total']} |"
            )
        effect = [s["personalized"]["macro_f1"] - s["central_before"]["macro_f1"] for s in summaries.values()]
        fedavg = [s["central_after"]["macro_f1"] - s["central_before"]["macro_f1"] for s in summaries.values()]
        effects = f"personalization {mean_ci(effect)} macro F1, FedAvg {mean_ci(fedavg)}"
        lines.append(f"| {variant} | all | {effects} | | | |")
    return lines


def pseudo_precision(runs: dict[str, dict[int, dict]]) -> list[str]:
    """Round-1 pseudo labels per class over all seeds: precision (selected videos in brackets)."""
    classes = next(iter(next(iter(runs.values())).values()))["classes"]
    lines = ["| variant | " + " | ".join(classes) + " | all |", "|---" * (len(classes) + 2) + "|"]
    for variant, summaries in runs.items():
        cells = []
        for c in [*classes, None]:
            n = hits = 0
            for s in summaries.values():
                q = s["pseudo_labels"]
                count = q["selected_total"] if c is None else q["selected_per_class"][c]
                share = q["accuracy"] if c is None else q["precision_per_class"][c]
                n, hits = n + count, hits + (share or 0) * count
            cells.append(f"{100 * hits / n:.0f} ({n})" if n else "- (0)")
        lines.append(f"| {variant} | {' | '.join(cells)} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/study_seeds.md", flags="run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batchnorm-styles", nargs="+", default=["keras"], choices=("keras", "torch"))
    parser.add_argument(
        "--teachers", nargs="+", help="pseudo-labellers to compare (default: the world's default teacher only)"
    )
    parser.add_argument(
        "--tables-from", nargs="+", type=Path, help="no runs: the tables of these saved results (.json) side by side"
    )
    args = parser.parse_args(argv)
    base = options_from_args(args)
    runs: dict[str, dict[int, dict]] = {}
    for saved in args.tables_from or []:
        runs.update({v: {int(k): r for k, r in s.items()} for v, s in json.loads(saved.read_text()).items()})
    for teacher in [] if args.tables_from else args.teachers or [base.teacher]:
        for style in args.batchnorm_styles:
            variant = f"{teacher or 'default teacher'}, BatchNorm {style}"
            for seed in args.seeds:
                options = replace(
                    base,
                    teacher=teacher,
                    task=replace(base.task, seed=seed),
                    federation=replace(base.federation, personalize=replace(base.federation.personalize, seed=seed)),
                    ifer=replace(base.ifer, batchnorm=style),
                    vfer=replace(base.vfer, batchnorm=style),
                    name=f"{base.world}-K{base.task.num_classes}-seed{seed}-bn{style}"
                    + (f"-{Path(teacher).stem}" if teacher else ""),
                )
                run_dir = simulate(options)
                runs.setdefault(variant, {})[seed] = json.loads(RunDir(run_dir).summary.read_text())

    seeds = ", ".join(map(str, args.seeds))
    header = f"# {len(args.seeds)} seeds ({seeds}), world {base.world} (world seed {base.world_seed})"
    lines = [header, "", "Mean ± 95% confidence interval (t) over seeds, percent.", "", *table(runs), "", *gains(runs)]
    lines += ["", "Round-1 pseudo labels, all seeds: precision per class, percent (selected videos)", ""]
    lines += pseudo_precision(runs)
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out, text)
    atomic_write_json(
        args.out.with_suffix(".json"), {variant: {str(k): v for k, v in s.items()} for variant, s in runs.items()}
    )
    print(text)


if __name__ == "__main__":
    main()
