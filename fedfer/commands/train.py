"""`fedfer train`: the central models — g() on still images, v() on the training actors' videos.

Every step is cached (world, features, split, checkpoints); a second call only evaluates. The
test-actor evaluation is written to <workspace>/models/.../central_eval.{json,md} with confusion PNGs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fedfer.runs.options import add_world_arguments, options_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_world_arguments(parser)
    parser.add_argument("--out", type=Path, help="where to write the evaluation (default: beside the v() checkpoint)")


def run(args: argparse.Namespace) -> int:
    from fedfer.runs.study import run_stages

    options = options_from_args(args)
    prepared = run_stages(options)
    print(f"pseudo-labeller: {prepared.teacher.name} ({prepared.teacher.reason})")
    print(f"g(): {prepared.ifer or 'none (the pixel teacher reads face pixels)'}\nv(): {prepared.vfer}")
    from fedfer.stages.central_eval import evaluate_prepared

    evaluate_prepared(prepared, args.out or prepared.vfer.parent / f"{prepared.vfer.stem}-eval")
    return 0
