"""The paper's whole grid in one command: Tables 2-6 and Figure 3, the seed-002 variant, the
baselines, statistics over seeds, sensitivity plots and what pseudo-label precision buys.

    python simulations/grid.py --world small --seeds 0 1 2 --out results/grid
    python simulations/grid.py --world /data/CREMA-D --affectnet /data/AffectNet \\
        --msp-improv /data/MSP-IMPROV --seeds 0 1 2 --out results/grid-real

Writes OUT/report.md (every table beside the paper's numbers), OUT/grid.json (every seed's scores),
OUT/published.json (the docs' grid tables, stamped: copy it to docs/results/grid.json), Figure 3 per
table (OUT/figure3_<table>.png), OUT/precision_vs_gain.png and one OUT/sweep_<setting>.png per sweep.
Each finished table-seed is kept in OUT/parts/ and not recomputed by a rerun with the same settings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from study_args import study_parser

from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.paper.figures import (
    plot_precision_vs_gain,
    plot_subject_gains,
    plot_sweep,
    precision_correlation,
    table_section,
)
from fedfer.paper.published import grid_tables
from fedfer.paper.tables import TABLES, GridConfig, GridData, run_table_seed, sweep
from fedfer.publish.study_settings import published, settings_of
from fedfer.runs.options import RunOptions, options_from_args

SWEEPS: dict[str, list] = {
    "max_per_class": [5, 20, 50],
    "p_threshold": [0.3, 0.5, 0.7],
    "epochs": [1, 2, 5],
    "lr": [1e-5, 1e-3, 1e-2],
    "rounds": [1, 2, 3],
}


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/grid", flags="run")
    parser.add_argument("--tables", nargs="+", choices=list(TABLES), default=list(TABLES))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(GridConfig.seeds))
    parser.add_argument("--msp-improv", type=Path, help="MSP-IMPROV directory (synthetic worlds bring their own)")
    parser.add_argument("--sweeps", nargs="*", choices=list(SWEEPS), default=list(SWEEPS))
    parser.add_argument("--sweep-table", choices=list(TABLES), default="table2")
    parser.add_argument("--unchanged-within", type=float, default=GridConfig.unchanged_within)
    parser.add_argument(
        "--cached-only", action="store_true", help="only assemble the report from OUT/parts; compute nothing"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: many small models on a shared machine)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    options = options_from_args(args)
    rounds = options.federation.num_server_rounds
    grid = GridConfig(seeds=tuple(args.seeds), rounds=rounds, unchanged_within=args.unchanged_within)
    data = GridData(options, args.msp_improv)
    (args.out / "parts").mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    p = options.federation.personalize
    settings = {"P": p.max_per_class, "p_threshold": p.p_threshold, "epochs": p.epochs, "lr": p.lr, "rounds": rounds}
    results = run_tables(args, data, options, grid, settings)
    sweeps = run_sweeps(args, data, options, grid, settings)
    lines = [
        "# The paper's grid",
        "",
        f"World {data.world.world_id}; features {options.features.weights} at {options.features.image_size} px; "
        f"teacher {options.teacher or 'default'}; BatchNorm {options.vfer.batchnorm}. Adaptation in-process with "
        "Flower's FedAvg aggregation (see fedfer/paper/adaptation.py).",
        "",
        *table_lines(results, args.out, grid),
        *sweep_lines(sweeps, args.sweep_table, grid.seeds[0]),
        f"Wall time of this command: {time.monotonic() - started:.0f} s (cached parts not recomputed).",
    ]
    atomic_write_json(args.out / "grid.json", {"tables": results, "sweeps": sweeps, "settings": settings})
    keys = ("world", "world seed", "image size", "batchnorm", "teacher", "P", "threshold")
    settings = settings_of(options, *keys, seeds=" ".join(map(str, grid.seeds)), rounds=rounds)
    atomic_write_json(args.out / "published.json", published(grid_tables(results, sweeps, TABLES), settings))
    atomic_write_text(args.out / "report.md", "\n".join(lines) + "\n")
    print(f"written: {args.out / 'report.md'}")


def run_tables(
    args: argparse.Namespace, data: GridData, options: RunOptions, grid: GridConfig, settings: dict
) -> dict[str, list[dict]]:
    """Every table-seed, from OUT/parts when computed with the same settings, else computed and kept there."""
    results: dict[str, list[dict]] = {}
    for key in args.tables:
        spec = TABLES[key]
        for seed in grid.seeds:
            part = args.out / "parts" / f"{key}-seed{seed}.json"
            saved = json.loads(part.read_text()) if part.is_file() else None
            if saved is None or saved.get("run_settings") != settings:
                if args.cached_only:
                    print(f"{key} seed {seed}: not computed yet", flush=True)
                    continue
                t0 = time.monotonic()
                saved = {**run_table_seed(data.table_seed(spec, seed), options, grid), "run_settings": settings}
                saved["seconds"] = round(time.monotonic() - t0, 1)
                atomic_write_json(part, saved)
            print(
                f"{key} seed {seed}: central {100 * saved['pooled']['central']['macro_f1']:.1f} → personalized "
                f"{100 * saved['pooled']['personalized']['macro_f1']:.1f} → after FedAvg "
                f"{100 * saved['pooled']['after_fedavg']['macro_f1']:.1f} macro F1 ({saved['seconds']} s)",
                flush=True,
            )
            results.setdefault(key, []).append(saved)
    return results


def run_sweeps(
    args: argparse.Namespace, data: GridData, options: RunOptions, grid: GridConfig, settings: dict
) -> dict[str, list[dict]]:
    """Each sweep of --sweep-table on the first seed, from OUT/parts when already computed; one plot each."""
    sweeps, points, ts = {}, {}, None
    for parameter in args.sweeps:
        part = args.out / "parts" / f"sweep-{args.sweep_table}-{parameter}-seed{grid.seeds[0]}.json"
        if part.is_file() and json.loads(part.read_text()).get("run_settings") == settings:
            sweeps[parameter] = json.loads(part.read_text())["points"]
        elif args.cached_only:
            print(f"sweep {parameter}: not computed yet", flush=True)
            continue
        else:
            ts = ts or data.table_seed(TABLES[args.sweep_table], grid.seeds[0])
            sweeps[parameter] = sweep(ts, options, grid, parameter, SWEEPS[parameter], points)
            atomic_write_json(part, {"points": sweeps[parameter], "run_settings": settings})
        plot_sweep(parameter, sweeps[parameter], args.out / f"sweep_{parameter}.png")
        print(f"sweep {parameter}: done", flush=True)
    return sweeps


def table_lines(results: dict[str, list[dict]], out: Path, grid: GridConfig) -> list[str]:
    """Each table beside the paper's with its Figure 3, then pseudo-label precision against gain."""
    lines = []
    for key, seeds in results.items():
        spec = TABLES[key]
        lines += table_section(key, spec.title, spec.protocol, spec.labels, seeds, grid.unchanged_within)
        plot_subject_gains(seeds[0], out / f"figure3_{key}.png", f"{key}, seed {seeds[0]['seed']}")
        lines += [f"![Figure 3, {key}](figure3_{key}.png)", ""]
    plot_precision_vs_gain(results, out / "precision_vs_gain.png")
    return [
        *lines,
        "## Pseudo-label precision against gain",
        "",
        *precision_correlation(results),
        "",
        "![precision vs gain](precision_vs_gain.png)",
        "",
    ]


def sweep_lines(sweeps: dict[str, list[dict]], table: str, seed: int) -> list[str]:
    if not sweeps:
        return []
    lines = [
        f"## Sensitivity ({table}, seed {seed})",
        "",
        "| setting | value | central | personalized | after FedAvg | pseudo precision | selected |",
        "|---|---|---|---|---|---|---|",
    ]
    for parameter, points in sweeps.items():
        lines += [
            f"| {parameter} | {p['value']} | {100 * p['central_macro_f1']:.1f} "
            f"| {100 * p['personalized_macro_f1']:.1f} | {100 * p['after_fedavg_macro_f1']:.1f} "
            f"| {100 * p['pseudo_precision']:.1f} | {p['selected']} |"
            for p in points
        ]
    return [*lines, "", *[f"![{p}](sweep_{p}.png)" for p in sweeps], ""]


if __name__ == "__main__":
    main()
