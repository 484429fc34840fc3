"""`fedfer run` for several seeds, averaged: the personalization and FedAvg effects with their spread.

Each seed draws its own actor split, central training and personalization on the same rendered
world (`--world-seed`); features are computed once and shared.

    python simulations/study_seeds.py --world small --seeds 0 1 2 --out results/study_seeds.md
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from fedfer.commands.run import add_arguments, options_from_args
from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.runner import simulate

ROWS = (("central_before", "central model (before)"), ("personalized", "personalized local models"), ("central_after", "central model after FedAvg"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("results/study_seeds.md"))
    args = parser.parse_args()
    base = options_from_args(args)
    summaries = {}
    for seed in args.seeds:
        options = replace(base, task=replace(base.task, seed=seed), personalize=replace(base.personalize, seed=seed), name=None)
        run_dir = simulate(options)
        summaries[seed] = json.loads((run_dir / "summary.json").read_text())

    def stats(key: str, metric: str) -> tuple[float, float]:
        values = np.array([100 * s[key][metric] for s in summaries.values()])
        return float(values.mean()), float(values.std())

    lines = [f"# {len(summaries)} seeds ({', '.join(map(str, summaries))}), world {base.world} (world seed {base.world_seed})", "",
             "| model | macro F1 (mean ± sd) | micro F1 (mean ± sd) | paper macro | paper micro |", "|---|---|---|---|---|"]
    paper = next(iter(summaries.values()))["paper"]
    for key, label in ROWS:
        (ma, mas), (mi, mis) = stats(key, "macro_f1"), stats(key, "micro_f1")
        lines.append(f"| {label} | {ma:.1f} ± {mas:.1f} | {mi:.1f} ± {mis:.1f} | {paper[key]['macro']} | {paper[key]['micro']} |")
    lines += ["", "| seed | improved | unchanged | worse | mean micro gain | pseudo-label accuracy | selected |", "|---|---|---|---|---|---|---|"]
    for seed, s in summaries.items():
        c, q = s["subjects_change"], s["pseudo_labels"]
        lines.append(f"| {seed} | {c['improved']} | {c['unchanged']} | {c['worse']} | {100 * c['mean_micro_gain']:+.1f} | {100 * (q['accuracy'] or 0):.1f} | {q['selected_total']} |")
    per_class = {cls: sum(s["pseudo_labels"]["selected_per_class"][cls] for s in summaries.values()) for cls in next(iter(summaries.values()))["classes"]}
    lines += ["", "pseudo-labelled videos per class, all seeds: " + ", ".join(f"{k} {v}" for k, v in per_class.items())]
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out, text)
    atomic_write_json(args.out.with_suffix(".json"), {str(k): v for k, v in summaries.items()})
    print(text)


if __name__ == "__main__":
    main()
