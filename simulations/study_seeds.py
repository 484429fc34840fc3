"""`fedfer run` over several seeds (and BatchNorm conventions): the effects with 95% confidence intervals.

Each seed draws its own actor split, central training and personalization on the same rendered
world (`--world-seed`); features are computed once and shared. With several `--batchnorm` styles
each runs on the same seeds, so the table compares them like for like.

    python simulations/study_seeds.py --world small --seeds 0 1 2 --batchnorm keras torch \\
        --out results/study_seeds.md
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats

from fedfer.commands.options import add_run_arguments, options_from_args
from fedfer.experiment.rundir import RunDir
from fedfer.experiment.simulate import simulate
from fedfer.io import atomic_write_json, atomic_write_text

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
        "| BatchNorm | model | " + " | ".join(label for _, label in METRICS) + " | paper macro / micro |",
        "|---" * (3 + len(METRICS)) + "|",
    ]
    for style, summaries in runs.items():
        for key, label in ROWS:
            cells = [mean_ci([s[key][m] for s in summaries.values()]) for m, _ in METRICS]
            lines.append(f"| {style} | {label} | {' | '.join(cells)} | {paper[key]['macro']} / {paper[key]['micro']} |")
    return lines


def gains(runs: dict[str, dict[int, dict]]) -> list[str]:
    """Per seed: the subject tally (weighted F1, the paper's per-subject quantity) and the pseudo labels."""
    lines = [
        "| BatchNorm | seed | improved / unchanged / worse | mean gain | pseudo-label accuracy | selected |",
        "|---|---|---|---|---|---|",
    ]
    for style, summaries in runs.items():
        for seed, s in summaries.items():
            c, q = s["subjects_change"], s["pseudo_labels"]
            lines.append(
                f"| {style} | {seed} | {c['improved']} / {c['unchanged']} / {c['worse']} | {100 * c['mean_gain']:+.1f} "
                f"| {100 * (q['accuracy'] or 0):.1f} | {q['selected_total']} |"
            )
        effect = [s["personalized"]["macro_f1"] - s["central_before"]["macro_f1"] for s in summaries.values()]
        fedavg = [s["central_after"]["macro_f1"] - s["central_before"]["macro_f1"] for s in summaries.values()]
        lines.append(f"| {style} | all | personalization {mean_ci(effect)} macro F1, FedAvg {mean_ci(fedavg)} | | | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batchnorm-styles", nargs="+", default=["keras"], choices=("keras", "torch"))
    parser.add_argument("--out", type=Path, default=Path("results/study_seeds.md"))
    args = parser.parse_args()
    base = options_from_args(args)
    runs: dict[str, dict[int, dict]] = {}
    for style in args.batchnorm_styles:
        for seed in args.seeds:
            options = replace(
                base,
                task=replace(base.task, seed=seed),
                personalize=replace(base.personalize, seed=seed),
                ifer=replace(base.ifer, batchnorm=style),
                vfer=replace(base.vfer, batchnorm=style),
                name=f"{base.world}-K{base.task.num_classes}-seed{seed}-bn{style}",
            )
            run_dir = simulate(options)
            runs.setdefault(style, {})[seed] = json.loads(RunDir(run_dir).summary.read_text())

    seeds = ", ".join(map(str, args.seeds))
    header = f"# {len(args.seeds)} seeds ({seeds}), world {base.world} (world seed {base.world_seed})"
    lines = [header, "", "Mean ± 95% confidence interval (t) over seeds, percent.", "", *table(runs), "", *gains(runs)]
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out, text)
    atomic_write_json(
        args.out.with_suffix(".json"), {style: {str(k): v for k, v in s.items()} for style, s in runs.items()}
    )
    print(text)


if __name__ == "__main__":
    main()
