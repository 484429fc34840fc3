"""`fedfer prepare`: everything `fedfer run` does before Flower, then the `flwr run` line that does the rest.

For users who drive Flower themselves: the run folder (subjects, checkpoints, run config) is
written exactly as `fedfer run` writes it, and `flwr run .` from the repository's folder, with the
printed options, runs the same apps as a local simulation and writes the same results and report.
"""

from __future__ import annotations

import argparse

from fedfer.runs.options import add_run_arguments, add_simulation_arguments, options_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    add_simulation_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from fedfer.flower.runtime import APP_DIR, QUIET_FLOWER_ENV
    from fedfer.runs.study import flwr_run_line, prepare_run

    options = options_from_args(args)
    if options.federation.adapt.rounds:
        raise ValueError(
            f"fedfer prepare writes one federation, and --adapt-f-rounds {options.federation.adapt.rounds} needs two "
            "with a re-extraction of the features between them: use `fedfer run` or `fedfer deploy` to adapt f(), "
            "or prepare with `--weights` naming an adapted f() (a run's server/adapted_f.pt)"
        )
    prepared = prepare_run(options)
    env = " ".join(f"{key}={value}" for key, value in QUIET_FLOWER_ENV.items())
    print(f"prepared {prepared.run.root}: {len(prepared.subjects)} subjects, run config {prepared.run.run_config}")
    print(f"run it with Flower (a local simulation; the report lands in {prepared.run.root}):\n")
    print(f"  cd {APP_DIR} && {env} {flwr_run_line(prepared, options.client_cpus)}\n")
    print(
        "Flower leaves its local SuperLink running afterwards (port 39091); "
        "stop it with `pkill -f 'flower-superlink.*local-superlink'`."
    )
    return 0
