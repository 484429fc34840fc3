"""Differential privacy against accuracy: macro F1 of the central v() after FedAvg and of the personalized
local models, for several noise multipliers, beside the same run without differential privacy.

Every run shares the world, the split, the central v() and the seeds; only `--dp-noise` changes (the
clipping norm is `--dp-clip`, the sampled clients are all of them: fraction-train 1). The personalized
local models never leave the device and are neither clipped nor noised: the guarantee does not cover
them, and they change here only through the noised central v() of later rounds (round 1 starts from the
same central v() in every run, so its personalized row shows what clipping and noise did not touch).

Beside `--out` (Markdown) and its .json, `dp-published.json` holds the same table stamped for the docs
(table `noise`): copy it to docs/results/dp.json.

    python simulations/study_dp.py --world small --workspace data --noise 0 0.1 0.3 1.0 \\
        --out results/study_dp.md
    python simulations/study_dp.py --world small --tables-from results/study_dp.json --out results/study_dp.md
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from study_args import study_parser

from fedfer.federation.privacy import epsilon, sampled_clients
from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.publish.result_tables import markdown
from fedfer.publish.study_settings import published, settings_of
from fedfer.runconfig import DEFAULT_DP_CLIPPING_NORM, PrivacyConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions, options_from_args
from fedfer.runs.simulate import simulate

ROWS = (
    ("central_before", "central before"),
    ("central_after", "central after FedAvg"),
    ("personalized", "personalized (round 1)"),
)
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_text(x: float) -> str:
    """`x` as the docs write δ: "10⁻³" for a power of ten, else plainly."""
    exponent = round(math.log10(x)) if x > 0 else 0
    return f"10{str(exponent).translate(SUPERSCRIPT)}" if x > 0 and x == 10.0**exponent else f"{x:g}"


def setting_label(label: str) -> str:
    """A setting's row name, with the aggregation it implies: clipping switches FedAvg to uniform weights."""
    if not label.startswith("z = "):
        return f"{label} (weighted FedAvg)"
    return "z = 0 (clipping only, uniform FedAvg)" if float(label[4:]) == 0 else label


def epsilon_cell(label: str, rounds: int, clients: int, clip: float, delta: float) -> str:
    """ε at `delta` for a "z = …" setting ("-" without DP or noise; needs `pip install "flwr[dp]"`)."""
    if not label.startswith("z = ") or float(label[4:]) == 0:
        return "∞" if label.startswith("z = ") else "-"
    try:
        return f"{epsilon(PrivacyConfig(float(label[4:]), clip), rounds, clients, delta):.1f}"
    except ImportError:
        return "n/a (pip install flwr[dp])"


def noise_table(summaries: dict[str, dict], rounds: int, clip: float, delta: float) -> dict:
    """The table of the study (docs table `dp/noise`): macro F1 in percent per setting, the personalized
    models of every round ("-" where a run has no such round)."""
    keys = [key for key, _ in ROWS] + [f"personalized_round_{r}" for r in range(2, rounds + 1)]
    plural = "s" if rounds != 1 else ""
    columns = ["setting", f"ε (δ = {power_text(delta)}, {rounds} round{plural})", *(label for _, label in ROWS)]
    columns += [f"personalized (round {r})" for r in range(2, rounds + 1)]
    clients = summaries["no DP"]["num_subjects"]
    rows = [
        [setting_label(label), epsilon_cell(label, rounds, clients, clip, delta)]
        + [f"{100 * s[key]['macro_f1']:.1f}" if key in s else "-" for key in keys]
        for label, s in summaries.items()
    ]
    return {"columns": columns, "rows": rows}


def simulate_with_retries(options: RunOptions, attempts: int) -> Path:
    """`simulate`, tried again when the Flower run fails: on a crowded machine Ray's node can miss its 30 s
    start-up window. Each failure is printed; the last one is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return simulate(options)
        except RuntimeError as err:
            print(f"attempt {attempt} of {attempts} failed: {err}", flush=True)
            if attempt == attempts:
                raise
    raise ValueError(f"--attempts must be >= 1, got {attempts}")


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/study_dp.md", flags="simulation")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.1, 0.3, 1.0], help="noise multipliers z")
    parser.add_argument("--delta", type=float, default=1e-3, help="δ of the reported ε (default 1e-3 < 1/clients)")
    parser.add_argument("--tables-from", type=Path, help="no runs: the table of this saved result (.json)")
    parser.add_argument(
        "--attempts", type=int, default=3, help="tries per run when Flower's run fails (Ray's start on a busy machine)"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the runs of this study that already finished in --results"
    )
    args = parser.parse_args(argv)
    base = options_from_args(args)
    clip = args.dp_clipping_norm or DEFAULT_DP_CLIPPING_NORM
    settings = {"no DP": PrivacyConfig(), **{f"z = {z}": PrivacyConfig(z, clip) for z in args.noise}}
    summaries = json.loads(args.tables_from.read_text()) if args.tables_from else {}
    for label, privacy in {} if args.tables_from else settings.items():
        tag = "nodp" if not privacy.enabled else f"dp-z{privacy.noise_multiplier}-c{privacy.clipping_norm}"
        options = replace(base, federation=replace(base.federation, privacy=privacy), name=f"{base.run_name}-{tag}")
        done = RunDir(options.run_dir).summary
        run_dir = options.run_dir if args.reuse and done.is_file() else simulate_with_retries(options, args.attempts)
        summaries[label] = json.loads(RunDir(run_dir).summary.read_text())
    clients = summaries["no DP"]["num_subjects"]
    sampled, rounds = sampled_clients(clients, base.federation.fraction_train), base.federation.num_server_rounds
    table = noise_table(summaries, rounds, clip, args.delta)
    lines = [
        f"# Differential privacy on world {base.world} (seed {base.task.seed}), {clients} clients, {rounds} rounds",
        "",
        f"Client-side clipping to L2 norm C = {clip}, server-side Gaussian noise of std z × C / {sampled} "
        f"({sampled} sampled clients per round), uniform FedAvg. Macro F1, percent. ε at δ = {args.delta} "
        f"for {rounds} releases, each client in every round (Flower's RDP accountant, no sampling "
        "amplification; add-or-remove-one client).",
        "",
        *markdown(table["columns"], table["rows"]),
        "",
        "The personalized local models stay on the device and are not covered by the guarantee.",
    ]
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out, text)
    atomic_write_json(args.out.with_suffix(".json"), summaries)
    keys = ("world", "world seed", "image size", "seed", "P", "threshold")
    settings = settings_of(base, *keys, clients=clients, rounds=rounds, C=clip, **{"δ": args.delta})
    atomic_write_json(args.out.with_name("dp-published.json"), published({"noise": table}, settings))
    print(text)


if __name__ == "__main__":
    main()
