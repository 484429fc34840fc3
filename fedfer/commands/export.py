"""`fedfer export --format onnx`: f()+v() in streaming form and g() as ONNX graphs with a JSON card."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fedfer.commands.predict import add_model_arguments, model_choice_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--ifer-checkpoint", type=Path, help="g() checkpoint (default with --run: the run's own g())")
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="export format (default: onnx)")
    parser.add_argument("--out", type=Path, required=True, help="folder for fv_step.onnx, g.onnx and card.json")


def run(args: argparse.Namespace) -> int:
    from fedfer.predict.choice import load_model
    from fedfer.predict.exported import export_onnx

    choice = model_choice_from_args(args)
    with_g = args.run is not None or args.ifer_checkpoint is not None
    card = export_onnx(load_model(choice, with_g=with_g), args.out)
    print(json.dumps({k: card[k] for k in ("model", "classes", "files", "backbone_id")}, indent=2))
    print(f"wrote {args.out}")
    return 0
