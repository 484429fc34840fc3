"""Seed 003's route against the paper's frozen f(): `fedfer run` with and without `--adapt-f-rounds`.

For each `--seeds` value (the actor split, the training and the personalization), two runs on the same
world: f() frozen (the paper), and f()'s last blocks adapted first by federated SimCLR on the test
subjects' own face crops, after which the world's features are re-extracted and the central g() and
v() retrained on them. The table gives macro F1 (mean ± 95% CI over seeds) of the central v() before
federation, the round-1 personalized models and the central v() after FedAvg, with what each route
costs: MB per client per round of each federation, seconds per adaptation round (all clients), and the
minutes the adapted run spent re-extracting the features and training g() and v() on them. Every
number is read from the runs' summary.json.

Beside `--out` (Markdown) and its .json, `adapt-f-published.json` holds the table stamped for the docs.

    python simulations/study_adapt_f.py --world small --world-seed 200 --workspace data --seeds 0 1 2 \\
        --adapt-f-rounds 2 --out results/adapt_f/study.md
"""

from __future__ import annotations

import json
from dataclasses import replace

from study_args import study_parser

from fedfer.evaluation.stats import mean_ci
from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.publish.result_tables import markdown
from fedfer.publish.study_settings import published, settings_of
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions, options_from_args
from fedfer.runs.simulate import simulate

MB = 1e6
SCORES = (("central_before", "central v()"), ("personalized", "personalized"), ("central_after", "after FedAvg"))


def route_options(base: RunOptions, seed: int, adapted: bool) -> RunOptions:
    """One run of the study: `base` at `seed`, with its adaptation rounds or none (the paper's frozen f())."""
    adapt = base.federation.adapt if adapted else replace(base.federation.adapt, rounds=0)
    name = f"{base.world}-s{base.world_seed}-seed{seed}-{'adapt-f' if adapted else 'frozen-f'}"
    return replace(
        base, task=replace(base.task, seed=seed), federation=replace(base.federation, adapt=adapt), name=name
    )


def route_row(label: str, summaries: list[dict]) -> list[str]:
    """A table row: the route's scores over seeds, its bytes per round, and what the adaptation took: seconds
    per adaptation round, and the minutes spent re-extracting the features and training g() and v() on them."""
    cells = [mean_ci([s[key]["macro_f1"] for s in summaries]).format() for key, _ in SCORES]
    cells.append(f"{summaries[0]['rounds'][0]['bytes_up_per_client_mean'] / MB:.2f}")
    if "adapt_f" not in summaries[0]:  # the frozen route
        return [label, *cells, "–", "–", "–"]
    adapting = [r for s in summaries for r in s["adapt_f"]]
    seconds = sum(r["seconds"] for r in adapting) / len(adapting)
    minutes = [s["adapted_stages_seconds"] / 60 for s in summaries]
    per_round = f"{adapting[0]['bytes_up_per_client_mean'] / MB:.2f}"
    return [label, *cells, per_round, f"{seconds:.0f}", f"{sum(minutes) / len(minutes):.1f}"]


def paired_row(frozen: list[dict], adapted: list[dict]) -> list[str]:
    """What adapting f() changed, seed by seed (the same actor split and training seed on both routes)."""
    cells = []
    for key, _ in SCORES:
        gains = [a[key]["macro_f1"] - f[key]["macro_f1"] for f, a in zip(frozen, adapted, strict=True)]
        cells.append(mean_ci(gains).format(signed=True))
    return ["Δ adapted − frozen, paired over seeds", *cells, "–", "–", "–", "–"]


def routes_table(frozen: list[dict], adapted: list[dict], rounds: int, blocks: int) -> dict:
    columns = ["f()", *(name for _, name in SCORES), "MB up / client / round: v()", "the same: f()'s blocks"]
    columns += ["seconds per adaptation round", "re-extraction and central training, min"]
    rows = [
        route_row("frozen (the paper)", frozen),
        route_row(f"adapted: {rounds} round(s), last {blocks} block(s)", adapted),
        paired_row(frozen, adapted),
    ]
    return {"columns": columns, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/adapt_f/study.md", flags="simulation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="actor splits and training seeds")
    parser.add_argument("--reuse", action="store_true", help="keep the runs of this study that already finished")
    args = parser.parse_args(argv)
    base = options_from_args(args)
    if not base.federation.adapt.rounds:
        parser.error("give --adapt-f-rounds N (N >= 1): the adapted route is what this study compares")
    results: dict[str, list[dict]] = {"frozen": [], "adapted": []}
    for seed in args.seeds:
        for route in results:
            options = route_options(base, seed, adapted=route == "adapted")
            done = RunDir(options.run_dir).summary
            run_dir = options.run_dir if args.reuse and done.is_file() else simulate(options)
            results[route].append(json.loads(RunDir(run_dir).summary.read_text()))
            atomic_write_json(args.out.with_suffix(".json"), results)  # each run's hours are kept
    adapt = base.federation.adapt
    table = routes_table(results["frozen"], results["adapted"], adapt.rounds, adapt.blocks)
    clients = results["frozen"][0]["num_subjects"]
    lines = [
        f"# f() frozen or adapted: world {base.world} (seed {base.world_seed}), {clients} clients, seeds {args.seeds}",
        "",
        "Macro F1, percent, mean ± 95% CI over seeds. MB: Flower's serialized train reply per client.",
        "",
        *markdown(table["columns"], table["rows"]),
    ]
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out, text)
    settings = settings_of(
        base,
        "world",
        "world seed",
        "image size",
        clients=clients,
        seeds=args.seeds,
        **{"adapt-f": f"{adapt.rounds} rounds, {adapt.blocks} blocks, {adapt.frames_per_clip} frames/clip"},
    )
    atomic_write_json(args.out.with_name("adapt-f-published.json"), published({"routes": table}, settings))
    print(text)


if __name__ == "__main__":
    main()
