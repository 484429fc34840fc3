"""The personalization effect on unseen calibrated worlds, and pseudo-labelling methods beyond the paper.

    python simulations/study_effect.py --world-seeds 200 201 202 --splits 0 1 2 --out results/effect
    python simulations/study_effect.py --world-seeds 202 --table table2-heldout --out results/effect-heldout

Each (world seed, split) is one unit: Table 2's setting (6 classes, audio-visual plurality labels,
transductive) with every test subject of the world, the central v() and g() of that split, and each
method of `fedfer.paper.methods` federated from the same central v() for `--rounds` rounds. Writes
OUT/units/w<world>-s<split>.json (kept; a rerun with the same settings recomputes nothing, and one
with more --methods computes only the new methods, on the same subjects and central models),
OUT/effect.json, OUT/effect.md (stamped tables) and OUT/effect.png (paired effects with 95% CIs).
The worlds 200-209 were set aside before the calibration (simulations/calibrate_world.py) and are
never used to fit it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from study_args import study_parser

from fedfer.evaluation.effect import Unit, paired, per_class, pseudo_labels
from fedfer.evaluation.stamp import stamp, stamp_line
from fedfer.evaluation.stats import mean_ci
from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.paper.methods import METHODS, REFERENCE, model_key, run_unit, unit_of
from fedfer.paper.tables import TABLES, GridData
from fedfer.runconfig import PersonalizeConfig
from fedfer.runs.options import RunOptions, options_from_args
from fedfer.settings import values_of

log = logging.getLogger("study_effect")
DEFAULTS = values_of(PersonalizeConfig())
SETTINGS = ("table2", "table2-heldout")  # the paper's protocol, or adapting on one half and scoring the other


def class_shares(data: GridData, split: int, num_classes: int) -> list[float]:
    """The central training clips' label shares of `split`: what the server knows, sent as `class-prior`."""
    prepared = data.prepared(num_classes, split)
    return prepared.label_shares(prepared.split["train"]).tolist()


def unit_record(
    options: RunOptions, table: str, world_seed: int, split: int, methods: list[str], clients: int | None
) -> dict:
    data = GridData(replace(options, world_seed=world_seed))
    spec = TABLES[table]
    ts = data.table_seed(spec, split)
    if clients:
        ts = replace(ts, subjects=ts.subjects[:clients], g_adapt=ts.g_adapt[:clients], g_test=ts.g_test[:clients])
    base = replace(options.federation.personalize, seed=split)
    return run_unit(
        ts, base, methods, options.federation.num_server_rounds, class_shares(data, split, spec.num_classes)
    )


def unit_key(options: RunOptions) -> dict:
    """What a unit's record depends on besides its methods: the subjects, the world, the rounds and the
    personalization settings that differ from the defaults (the paper's)."""
    changed = {k: v for k, v in values_of(options.federation.personalize).items() if v != DEFAULTS[k]}
    return {"clients": options.clients, "world": options.world, "personalize": changed} | {
        "rounds": options.federation.num_server_rounds
    }


def with_methods(record: dict, extra: dict) -> dict:
    """`record` with the methods of `extra`, a record of the same unit (same subjects, same order)."""
    for subject, more in zip(record["subjects"], extra["subjects"], strict=True):
        if subject["actor"] != more["actor"]:
            raise ValueError(f"unit records disagree on their subjects: {subject['actor']} against {more['actor']}")
        subject["predictions"] |= more["predictions"]
        subject["selected"] |= more["selected"]
    record["client_seconds_per_round"] |= extra["client_seconds_per_round"]
    return record


def units(args, options: RunOptions) -> list[tuple[Unit, dict]]:
    """Every (world, split) unit and its record, computed once and kept under OUT/units/; a method the
    record lacks is computed and added to it."""
    out = []
    key = unit_key(options)
    for world_seed in args.world_seeds:
        for split in args.splits:
            suffix = "" if args.table == "table2" else f"-{args.table}"
            path = args.out / "units" / f"w{world_seed}-s{split}{suffix}.json"
            record = json.loads(path.read_text()) if path.is_file() else None
            record = record if record is not None and record.get("key") == key else None
            missing = [m for m in args.methods if record is None or m not in record["client_seconds_per_round"]]
            if missing:
                log.info("world %d split %d: %d methods", world_seed, split, len(missing))
                new = {"key": key, **unit_record(options, args.table, world_seed, split, missing, options.clients)}
                record = new if record is None else with_methods(record, new)
                atomic_write_json(path, record)
            out.append((unit_of(record, world_seed), record))
    return out


def method_rows(found: list[Unit], records: list[dict], methods: list[str]) -> dict:
    """Per method: macro F1 and NEU recall (personalized, after FedAvg), the paired effect against the
    paper's rule, the subject tally and Wilcoxon p, pseudo-label quality, what it costs a subject (labelled
    clips, seconds per round) and the bytes of arrays it sends each way per client and round."""
    rows = {}
    for name in methods:
        row = {}
        for stage in ("personalized", "after_fedavg"):
            model = model_key(name, stage)
            scores = per_class(found, model)
            row[stage] = {
                "macro_f1": scores["macro"]["f1"],
                "neu_recall": scores["NEU"]["recall"],
                "per_class_f1": {c: scores[c]["f1"] for c in found[0].classes},
                "vs_paper": paired(found, model, model_key(REFERENCE, stage)),
                "vs_central": paired(found, model, "central"),
            }
        row["pseudo"] = pseudo_labels(found, name)
        row["seconds"] = mean_ci([r["client_seconds_per_round"][name] for r in records])
        row["labelled_clips"] = labelled_clips(name, len(found[0].classes))
        row["bytes_per_round"] = records[0]["v_bytes"]
        rows[name] = row
    return rows


def labelled_clips(name: str, num_classes: int) -> int:
    """How many of its own clips a subject labels for `name`: none where only the teacher labels."""
    config = replace(PersonalizeConfig(), **METHODS[name].settings)
    return 0 if config.labels_from == "teacher" else config.labelled_per_class * num_classes


def fmt(interval, signed: bool = False) -> str:
    return interval.format(signed=signed)


def markdown(found: list[Unit], rows: dict, v_bytes: int, args, the_stamp: dict) -> str:
    """The comparison tables (personalized, after FedAvg), F1 and pseudo labels per class, the methods."""
    central = per_class(found, "central")
    n_subjects = sum(len(u.subjects) for u in found)
    lines = [
        "# Personalization on unseen calibrated worlds",
        "",
        f"{TABLES[args.table].name} on worlds {', '.join(map(str, args.world_seeds))} × splits "
        f"{', '.join(map(str, args.splits))}: {len(found)} units, {n_subjects} subject-units. Intervals are 95% "
        "Student-t over units; Δ is the paired difference on the same subjects; a tally counts subjects whose "
        "weighted F1 rose / stayed / fell, with the two-sided Wilcoxon signed-rank p over them. Central v(): "
        f"macro F1 {fmt(central['macro']['f1'])}, NEU recall {fmt(central['NEU']['recall'])}.",
        "",
    ]
    for stage, title in (("personalized", "Personalized local models (round 1)"), ("after_fedavg", "After FedAvg")):
        lines += [f"## {title}", "", *stage_lines(rows, stage), ""]
    lines += [f"Every method sends v() alone: {v_bytes:,} bytes of arrays each way per client and round.", ""]
    for stage in ("personalized", "after_fedavg"):
        lines += [*per_class_lines(found, rows, stage), ""]
    lines += [*pseudo_lines(found, rows), "", "## The methods", ""]
    lines += [f"- **{name}**: {METHODS[name].what}." for name in rows]
    return "\n".join([*lines, "", stamp_line(the_stamp), ""])


def tally(paired_effect) -> str:
    return (
        f"{paired_effect.improved}/{paired_effect.unchanged}/{paired_effect.worse} (p {paired_effect.wilcoxon_p:.2g})"
    )


def stage_lines(rows: dict, stage: str) -> list[str]:
    lines = [
        "| method | macro F1 | Δ vs central | subjects ↑/=/↓ vs central (p) | Δ vs paper's rule | "
        "subjects ↑/=/↓ vs paper's rule (p) | NEU recall | s per client-round |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        r = row[stage]
        versus_paper = "— | —" if name == REFERENCE else f"{fmt(r['vs_paper'].macro_f1, True)} | {tally(r['vs_paper'])}"
        lines.append(
            f"| {name} | {fmt(r['macro_f1'])} | {fmt(r['vs_central'].macro_f1, True)} | {tally(r['vs_central'])} | "
            f"{versus_paper} | {fmt(r['neu_recall'])} | {row['seconds'].mean:.2f} |"
        )
    return lines


def per_class_lines(found: list[Unit], rows: dict, stage: str) -> list[str]:
    classes = found[0].classes
    title = {"personalized": "personalized, round 1", "after_fedavg": "after FedAvg"}[stage]
    lines = [f"## F1 per class ({title})", "", "| model | " + " | ".join(classes) + " | macro |"]
    lines.append("|---" * (len(classes) + 2) + "|")
    models = [("central", "central"), ("frame-mean g()", "frame_mean_g")]
    models += [(name, model_key(name, stage)) for name in rows]
    for label, model in models:
        scores = per_class(found, model)
        cells = [fmt(scores[c]["f1"]) for c in classes] + [fmt(scores["macro"]["f1"])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def pseudo_lines(found: list[Unit], rows: dict) -> list[str]:
    """Precision / recall (%) of the labels each method trained on in round 1, per class, and how many."""
    classes = found[0].classes
    lines = ["## Labels trained on in round 1: precision / recall per class (%), and count", ""]
    lines += ["| method | " + " | ".join(classes) + " | clips |", "|---" * (len(classes) + 2) + "|"]
    for name, row in rows.items():
        if METHODS[name].settings.get("epochs", 1) == 0:
            continue  # trains on no labels
        q = row["pseudo"]
        cells = [f"{100 * q[c]['precision']:.0f} / {100 * q[c]['recall']:.0f}" for c in classes]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {sum(int(q[c]['selected']) for c in classes)} |")
    return lines


def plot(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    for j, stage in enumerate(("personalized", "after_fedavg")):
        d = [rows[n][stage]["vs_central"].macro_f1 for n in names]
        y = np.arange(len(names)) + (0.18 if j else -0.18)
        ax.errorbar([100 * x.mean for x in d], y, xerr=[100 * x.half_width for x in d], fmt="o", label=stage)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("Δ macro F1 vs the central v() (points, 95% CI over units)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/effect", flags="run")
    parser.add_argument("--world-seeds", type=int, nargs="+", default=[200, 201, 202])
    parser.add_argument("--splits", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument(
        "--table",
        choices=SETTINGS,
        default="table2",
        help="table2: adapt and score on the same clips (the paper); table2-heldout: adapt on one half of each "
        "subject's clips per label and score on the other (seed 002's protocol)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    if REFERENCE not in args.methods:
        parser.error(f"--methods must include the reference, {REFERENCE!r}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    options = options_from_args(args)
    found, records = zip(*units(args, options))
    found, records = list(found), list(records)
    rows = method_rows(found, records, args.methods)
    the_stamp = stamp(
        world=options.world,
        world_seeds=args.world_seeds,
        splits=args.splits,
        table=args.table,
        rounds=options.federation.num_server_rounds,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "effect.md", markdown(found, rows, records[0]["v_bytes"], args, the_stamp))
    atomic_write_json(args.out / "effect.json", {"stamp": the_stamp, "methods": jsonable(rows)})
    plot(rows, args.out / "effect.png")
    print((args.out / "effect.md").read_text())


def jsonable(value):
    """Intervals and paired effects as plain numbers."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__") or hasattr(value, "__dict__"):  # per-subject gains stay in units/
        return {k: jsonable(v) for k, v in vars(value).items() if k != "subject_gains"}
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


if __name__ == "__main__":
    main()
