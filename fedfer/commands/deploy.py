"""`fedfer deploy`: the federation of `fedfer run` as real SuperLink/SuperNode processes.

Four uses: run everything on this machine (the default; TLS and node authentication unless
`--insecure`), make the credentials of a multi-machine deployment (`--make-certs DIR`), write one
data bundle per SuperNode for lab machines (`--export-nodes DIR`), or write one lab host's compose
file (`--compose FILE`). See docker/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedfer.config import CLIENTAPP_LAUNCHERS
from fedfer.runs.options import add_run_arguments, options_from_args


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
    parser.add_argument(
        "--make-certs",
        type=Path,
        metavar="DIR",
        help="only write a CA, the SuperLink certificate and --clients SuperNode keys into DIR",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        help=(
            "with --make-certs: an IP or DNS name SuperNodes dial the SuperLink by "
            "(repeatable; loopback is always included)"
        ),
    )
    parser.add_argument(
        "--export-nodes",
        type=Path,
        metavar="DIR",
        help="only prepare the run and write DIR/node-<i>/ (subject data + g()) for each SuperNode",
    )
    parser.add_argument(
        "--compose",
        type=Path,
        metavar="FILE",
        help="only write one lab host's compose file: the SuperLink (unless --superlink) and the SuperNodes --nodes",
    )
    parser.add_argument(
        "--nodes", default="", metavar="FIRST-LAST", help="with --compose: the SuperNodes of this host, e.g. 16-30"
    )
    parser.add_argument(
        "--superlink",
        metavar="HOST:PORT",
        help="with --compose: the SuperLink runs on another host, dialled at HOST:PORT (a name its certificate holds)",
    )


def run(args: argparse.Namespace) -> int:
    from fedfer.runs.bundles import prepare_nodes
    from fedfer.runs.deployment import deploy

    if args.make_certs:
        return make_certs(args.make_certs, args.clients, args.host)
    if args.compose:
        return write_compose(args.compose, args.nodes, args.superlink)
    options = options_from_args(args)
    if args.export_nodes:
        prepare_nodes(options, args.export_nodes)
        return 0
    if args.insecure:
        print(
            "WARNING: --insecure: no TLS and no node authentication; "
            "anyone who reaches the SuperLink's port can join or read the run",
            file=sys.stderr,
        )
    deploy(options, insecure=args.insecure, launcher=args.clientapps)
    return 0


def make_certs(directory: Path, num_nodes: int | None, hosts: list[str]) -> int:
    """`--make-certs`: the credentials of a multi-machine deployment, and what goes where."""
    from fedfer.flower.certs import LOOPBACK_HOSTS, make_credentials

    if not num_nodes:
        raise ValueError("--make-certs needs --clients N: one key pair is made per SuperNode")
    credentials = make_credentials(
        directory, num_nodes, hosts
    )  # ValueError: a --host that cannot go into a certificate
    print(f"{credentials.ca_cert}: the CA, for every machine and every `flwr` command")
    print(
        f"{credentials.server_cert}, {credentials.server_key}: the SuperLink's certificate for "
        f"{', '.join([*LOOPBACK_HOSTS, *hosts])}; SuperLink host only"
    )
    print(
        f"{credentials.node_key(0).parent}/node-<i>.key: SuperNode i's private key, for machine i only; "
        "register node-<i>.key.pub with `flwr supernode register`"
    )
    return 0


def write_compose(path: Path, nodes: str, superlink: str | None) -> int:
    """`--compose`: one lab host's compose file (see fedfer.runs.compose)."""
    import shlex

    from fedfer.io import atomic_write_text
    from fedfer.runs.compose import compose_text, node_range

    indices = node_range(nodes) if nodes else range(0)
    if superlink is not None and not indices:
        raise ValueError("--compose with --superlink writes a SuperNode host's file: give its --nodes, e.g. 16-30")
    command = ["fedfer", "deploy", "--compose", str(path)]
    command += ["--nodes", nodes] if nodes else []
    command += ["--superlink", superlink] if superlink else []
    atomic_write_text(path, compose_text(indices, superlink, shlex.join(command)))
    role = f"SuperNodes dialling {superlink}" if superlink else "the SuperLink and SuperNodes"
    print(f"{path}: {role} {list(indices) or 'none'}")
    return 0
