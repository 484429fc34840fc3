"""Argument handling shared by the studies and benchmarks in this folder.

Every script builds its parser here: its own docstring as the description, `--out` with the script's
default, and, where it works on a world, fedfer's own flags (`fedfer.runs.options`): the world's
(`--world`, `--workspace`, `--seed`, the task, the features, the central training) or a whole run's
(those plus the federation's run config), which `fedfer.runs.options.options_from_args` turns
into RunOptions. The scripts import it as a sibling module, which Python
allows because a script's own folder is the first entry of its module path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fedfer.runs.options import add_run_arguments, add_simulation_arguments, add_world_arguments

FLAG_SETS = ("", "world", "run", "simulation")  # what `study_parser(flags=...)` adds, each including the one before


def study_parser(doc: str | None, *, out: str | None = None, flags: str = "") -> argparse.ArgumentParser:
    """A parser described by `doc` (the script's docstring) with fedfer's `flags` ("world": where the data
    is, the task, the features; "run": also the federation's run config; "simulation": also Flower's
    simulation engine) and, unless `out` is None, `--out` defaulting to `out`."""
    if flags not in FLAG_SETS:
        raise ValueError(f"flags must be one of {FLAG_SETS}, got {flags!r}")
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if flags == "world":
        add_world_arguments(parser)
    elif flags:
        add_run_arguments(parser)
    if flags == "simulation":
        add_simulation_arguments(parser)
    if out is not None:
        parser.add_argument("--out", type=Path, default=Path(out), help=f"where the results go (default: {out})")
    return parser
