"""Poisoned clients against plain FedAvg, validated FedAvg and Flower's robust strategies.

For each setting "N:k" (N clients of which k are hostile) and each attack (`scale100`: v() ×100;
`signflip`: v() ×−1; `labelflip`: trained on pseudo labels shifted by one class), one `fedfer run`
per aggregation option, beside the clean run of the same N. Faults are injected by the ClientApp's
Flower mod (`fedfer.federation.faults`); everything else is a normal run (same world, seed, split
and central v()). Results are saved after every run, so an interrupted
study keeps what it measured and a rerun skips it.

The hostile clients are spread over the subjects that trained in the clean run (at least one
pseudo-labelled video): FedAvg weighs a reply by its videos, so a client without any weighs 0 and,
as an attacker, would change nothing (on `small`, half the subjects select no video at threshold 0.5).

Every figure of a setting is scored on the same subjects: its N − k honest ones, in the clean run
too. A refused client is left out of the round-1 personalized pool, and a hostile subject's own
model is no target (a label flipper's is wrong by design), so scoring the clean run on all N
would compare different subject sets.

Beside `--out` (Markdown) and its .json of runs, `poisoning-published.json` holds the same table stamped
for the docs (table `attacks`): copy it to docs/results/poisoning.json.

    python simulations/study_poisoning.py --world small --workspace data --settings 10:1 31:3 \\
        --results results/poisoning --out results/study_poisoning.md
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from study_args import study_parser

from fedfer.data.subject import MANIFEST, read_subjects_file
from fedfer.evaluation.scoring import report_from_confusion
from fedfer.federation.protocol import CM_PERSONAL
from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.publish.result_tables import markdown
from fedfer.publish.study_settings import published, settings_of
from fedfer.runconfig import RobustConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions, options_from_args
from fedfer.runs.records import client_evaluations
from fedfer.runs.simulate import simulate

ATTACKS = ("scale100", "signflip", "labelflip")
# Option name → how the server treats replies.
OPTIONS = {
    "plain FedAvg": {"aggregation": "fedavg", "validate": False},
    "validated FedAvg": {"aggregation": "fedavg"},
    "FedMedian": {"aggregation": "median"},
    "FedTrimmedAvg (β=0.2)": {"aggregation": "trimmed"},
    "Krum": {"aggregation": "krum"},
    "MultiKrum": {"aggregation": "multikrum"},
}
COLUMNS = (
    ("central_before", "central before"),
    ("central_after", "central after FedAvg"),
    ("personalized", "personalized (round 1)"),
    ("personalized_round_2", "personalized (round 2)"),
)


def selected_videos(run_dir: Path) -> list[int]:
    """Pseudo-labelled videos of each partition in round 1 of the run in `run_dir`."""
    subjects = [d.name for d in read_subjects_file(RunDir(run_dir).subjects_file)]
    selected = json.loads((run_dir / "summary.json").read_text())["rounds"][0]["selected_videos"]
    return [int(selected.get(s, 0)) for s in subjects]


def hostile(selected: Sequence[int], k: int) -> list[int]:
    """k partitions spread over those that selected videos (`selected`: per partition, in the clean run)."""
    trained = [p for p, n in enumerate(selected) if n > 0]
    if len(trained) < k:
        raise ValueError(f"only {len(trained)} subjects selected a video in the clean run; {k} hostile asked")
    return [trained[i * len(trained) // k] for i in range(k)]


def honest_scores(run_dir: Path, honest: Sequence[int]) -> dict[str, float | None]:
    """Macro F1 of each column on the subjects of partitions `honest` only (None: none scored), and
    how many of them each column scored (`<column>_subjects`)."""
    run = RunDir(run_dir)
    subject_dirs = read_subjects_file(run.subjects_file)
    subjects = [d.name for d in subject_dirs]
    classes = json.loads((subject_dirs[0] / MANIFEST).read_text())["classes"]
    names = [subjects[p] for p in honest]
    rounds = json.loads(run.rounds.read_text())
    evaluations = client_evaluations(rounds, subjects)
    last = max(r["round"] for r in rounds)
    central = {
        c: json.loads(run.central_eval(r).read_text())["per_subject"]
        for c, r in (("central_before", 0), ("central_after", last))
    }
    matrices = {
        **central,
        "personalized": {s: e[CM_PERSONAL] for s, e in evaluations.get(1, {}).items()},
        "personalized_round_2": {s: e[CM_PERSONAL] for s, e in evaluations.get(2, {}).items()},
    }
    k = len(classes)
    out: dict[str, float | None] = {}
    for column, per_subject in matrices.items():
        scored = [per_subject[s] for s in names if s in per_subject]
        pooled = sum((np.asarray(m, dtype=np.int64).reshape(k, k) for m in scored), np.zeros((k, k), np.int64))
        out[column] = report_from_confusion(pooled, classes).macro_f1 if scored else None
        out[f"{column}_subjects"] = len(scored)
    return out


def runs_of(
    settings: list[tuple[int, int]], attacks: list[str], options: Sequence[str] = tuple(OPTIONS)
) -> list[tuple[str, int, int, str, str]]:
    """(key, N, k, attack, option) of every run, clean runs first, then setting by setting."""
    runs = [(f"n{n}-clean", n, k, "clean", "plain FedAvg") for n, k in settings]
    for n, k in settings:
        for attack in attacks:
            runs += [(f"n{n}-k{k}-{attack}-{option}", n, k, attack, option) for option in options]
    return runs


def attacks_table(results: dict[str, dict], settings: list[tuple[int, int]], attacks: list[str]) -> dict:
    """Macro F1 in percent on the setting's honest subjects, per setting, attack and option; the
    clean run's row first (docs table `poisoning/attacks`)."""
    columns = ["clients (hostile)", "attack", "aggregation", *(c for _, c in COLUMNS)]
    rows = []
    for key, n, k, attack, option in runs_of(settings, attacks):
        if key not in results:
            continue
        honest = sorted(set(range(n)) - set(hostile(results[f"n{n}-clean"]["selected"], k)))
        s = honest_scores(Path(results[key]["run_dir"]), honest)
        cells = [f"{100 * s[c]:.1f}" if s.get(c) is not None else "-" for c, _ in COLUMNS]
        who = f"{n} (0)" if attack == "clean" else f"{n} ({k})"
        rows.append([who, attack, option if attack != "clean" else "FedAvg (clean run)", *cells])
    return {"columns": columns, "rows": rows}


def write_tables(
    args: argparse.Namespace, base: RunOptions, settings: list[tuple[int, int]], results: dict[str, dict]
) -> str:
    """The Markdown table at `--out` and the same table stamped for the docs beside it
    (poisoning-published.json), so an interrupted study leaves both; returns the Markdown."""
    table = attacks_table(results, settings, args.attacks)
    text = "\n".join(markdown(table["columns"], table["rows"])) + "\n"
    atomic_write_text(args.out, text)
    keys = ("world", "world seed", "image size", "batchnorm", "teacher", "P", "threshold", "seed", "rounds")
    atomic_write_json(
        args.out.with_name("poisoning-published.json"), published({"attacks": table}, settings_of(base, *keys))
    )
    return text


def result_of(run_dir: Path, faults: str) -> dict:
    """What the study keeps of a run (the table scores its run folder)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "run_dir": str(run_dir.resolve()),
        "faults": faults,
        "selected": selected_videos(run_dir),
        "all_subjects": {c: (summary.get(c) or {}).get("macro_f1") for c, _ in COLUMNS},
        "refused_per_round": [len(r["failures"]) for r in summary["rounds"]],
        "seconds": summary["total_seconds"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/study_poisoning.md", flags="run")
    parser.add_argument("--settings", nargs="+", default=["10:1", "31:3"], help="N:k, N clients of which k hostile")
    parser.add_argument("--attacks", nargs="+", choices=ATTACKS, default=list(ATTACKS))
    parser.add_argument("--options", nargs="+", choices=list(OPTIONS), default=list(OPTIONS), help="aggregations")
    args = parser.parse_args(argv)
    base = options_from_args(args)
    settings = [tuple(int(x) for x in s.split(":")) for s in args.settings]
    json_path = args.out.with_suffix(".json")
    results: dict[str, dict] = json.loads(json_path.read_text()) if json_path.is_file() else {}
    for key, n, k, attack, option in runs_of(settings, args.attacks, args.options):
        if key in results:
            continue
        selected = results[f"n{n}-clean"]["selected"] if attack != "clean" else []  # the clean run comes first
        faults = ",".join(f"{attack}@{p}" for p in hostile(selected, k)) if attack != "clean" else ""
        robust = replace(RobustConfig(), num_malicious=k, **OPTIONS[option])
        options = replace(
            base,
            clients=n,
            federation=replace(base.federation, robust=robust, faults=faults),
            name=f"poison-{n}-{k}-{attack}-{robust.aggregation}-{'checked' if robust.validate else 'plain'}",
        )
        print(f"== {key}: faults '{faults}'", flush=True)
        run_dir = simulate(options)
        results[key] = result_of(run_dir, faults)
        atomic_write_json(json_path, results)
        write_tables(args, base, settings, results)
    print(write_tables(args, base, settings, results))


if __name__ == "__main__":
    main()
