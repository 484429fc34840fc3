"""`fedfer deploy`: the federation of `fedfer run` as real SuperLink/SuperNode processes on this machine,
with TLS and node authentication unless `--insecure`. A lab of several machines is prepared with
`fedfer lab` (credentials, node bundles, compose files); see docs/how-to/deploy.md.
"""

from __future__ import annotations

import argparse
import sys

from fedfer.config import CLIENTAPP_LAUNCHERS
from fedfer.runs.options import add_run_arguments, options_from_args

MOVED = {  # flags of the lab's jobs, which `fedfer lab` does now
    "make_certs": ("--make-certs DIR", "fedfer lab certs DIR --clients N [--host H]"),
    "export_nodes": ("--export-nodes DIR", "fedfer lab nodes DIR [the run's flags]"),
    "compose": ("--compose FILE", "fedfer lab compose FILE [--nodes FIRST-LAST] [--superlink HOST:PORT]"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)  # same flags and results as `fedfer run`; --clients = number of SuperNodes
    parser.add_argument(
        "--insecure", action="store_true", help="no TLS and no node authentication (loopback experiments only)"
    )
    parser.add_argument(
        "--clientapps",
        choices=CLIENTAPP_LAUNCHERS,
        default="forked",
        help="how each SuperNode runs its ClientApps: forked from one warm process that imported torch once, "
        "beside a SuperNode that polls every 0.25 s (default), or Flower's subprocess mode, a fresh Python "
        "process per message",
    )
    for dest, (spelling, _) in MOVED.items():
        parser.add_argument(spelling.split()[0], dest=dest, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from fedfer.runs.deployment import deploy

    for dest, (spelling, new) in MOVED.items():
        if getattr(args, dest) is not None:
            raise ValueError(f"`fedfer deploy {spelling}` is now `{new}`")
    options = options_from_args(args)
    if args.insecure:
        print(
            "WARNING: --insecure: no TLS and no node authentication; "
            "anyone who reaches the SuperLink's port can join or read the run",
            file=sys.stderr,
        )
    deploy(options, insecure=args.insecure, launcher=args.clientapps)
    return 0
