"""`fedfer run`: the main job — a federated personalization simulation on Flower, with its report."""

from __future__ import annotations

import argparse

from fedfer.commands.options import (
    add_run_arguments,
    add_simulation_arguments,
    add_variant_arguments,
    options_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    add_variant_arguments(parser)
    add_simulation_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from fedfer.experiment.simulate import simulate

    simulate(options_from_args(args))
    return 0
