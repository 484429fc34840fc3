"""`fedfer evaluate`: score the central heads on the test actors (and g() on its still-image test set).

Writes `central_eval.json` (per-class precision/recall/F1, macro and micro means, UAR, WAR,
confusion matrices), `central_eval.md` (tables shaped like the paper's) and confusion PNGs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fedfer.runs.options import add_world_arguments, options_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_world_arguments(parser)
    parser.add_argument("--checkpoint", type=Path, help="v() checkpoint to evaluate (default: the world's central v())")
    parser.add_argument(
        "--out", type=Path, default=Path("results") / "evaluate", help="output directory (default: results/evaluate)"
    )


def run(args: argparse.Namespace) -> int:
    from fedfer.runs.study import run_stages

    options = options_from_args(args)
    prepared = run_stages(options)
    from fedfer.stages.central_eval import evaluate_prepared

    evaluate_prepared(prepared, args.out, args.checkpoint)
    return 0
