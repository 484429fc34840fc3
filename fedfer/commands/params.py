"""`fedfer params`: parameter counts of f(), g(), v() for the 4- and 6-class tasks."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", type=int, nargs="+", default=[4, 6], help="task sizes K (default: 4 6)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from fedfer.model.heads import parameter_table

    rows = parameter_table(tuple(args.classes))
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    header = (
        "block",
        "K",
        "paper trainable",
        "paper non-trainable",
        "torch params",
        "torch buffers",
        "trained on clients",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        k = "-" if r.block == "f" else str(r.num_classes)
        cells = (
            r.block,
            k,
            f"{r.paper_trainable:,}",
            f"{r.paper_non_trainable:,}",
            f"{r.torch_parameters:,}",
            f"{r.torch_buffers:,}",
            f"{r.trained_on_clients:,}",
        )
        print("| " + " | ".join(cells) + " |")
    print("\npaper convention: Keras (one LSTM bias per gate; BatchNorm moving statistics non-trainable).")
    print(
        "torch convention: nn.Module parameters (LSTM has bias_ih and bias_hh) and buffers (incl. num_batches_tracked)."
    )
    print(
        "f() is frozen everywhere; g() is trained centrally and frozen on clients; "
        "only v() is trained on clients and travels."
    )
    return 0
