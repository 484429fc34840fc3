"""`fedfer run`: the main job — a federated personalization simulation on Flower, with its report."""

from __future__ import annotations

import argparse

from fedfer.runs.options import (
    add_crowd_arguments,
    add_run_arguments,
    add_simulation_arguments,
    options_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    add_simulation_arguments(parser)
    add_crowd_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from fedfer.runs.scale import run_crowd
    from fedfer.runs.simulate import simulate

    options = options_from_args(args)
    (run_crowd if options.federation.crowd.size else simulate)(options)
    return 0
