"""`fedfer lab`: what a lab of several machines needs before its federation runs, one job per verb.

    fedfer lab certs DIR --clients N [--host H ...]     the CA, the SuperLink's certificate, one key per SuperNode
    fedfer lab nodes DIR [the flags of fedfer run]      prepare the run, write DIR/node-<i>/ (data + g()) per SuperNode
    fedfer lab compose FILE [--nodes 16-30] [--superlink HOST:PORT]   one lab host's compose file

`fedfer deploy` runs the federation itself as processes on one machine. The lab guide
(docs/how-to/deploy.md) says what goes where.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fedfer.runs.options import add_run_arguments, options_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    jobs = parser.add_subparsers(dest="job", metavar="JOB", required=True)
    certs = jobs.add_parser("certs", help="a CA, the SuperLink's certificate and one key pair per SuperNode")
    certs.add_argument("directory", type=Path, metavar="DIR")
    certs.add_argument("--clients", type=int, required=True, help="number of SuperNodes (one key pair each)")
    certs.add_argument(
        "--host",
        action="append",
        default=[],
        help="an IP or DNS name SuperNodes dial the SuperLink by (repeatable; loopback is always included)",
    )
    nodes = jobs.add_parser(
        "nodes", help="prepare the run (as fedfer run does) and write one data bundle per SuperNode into DIR"
    )
    nodes.add_argument("directory", type=Path, metavar="DIR")
    add_run_arguments(nodes)
    compose = jobs.add_parser("compose", help="one lab host's compose file: the SuperLink and/or its SuperNodes")
    compose.add_argument("file", type=Path, metavar="FILE")
    compose.add_argument("--nodes", default="", metavar="FIRST-LAST", help="the SuperNodes of this host, e.g. 16-30")
    compose.add_argument(
        "--superlink",
        metavar="HOST:PORT",
        help="the SuperLink runs on another host, dialled at HOST:PORT (a name its certificate holds)",
    )


def run(args: argparse.Namespace) -> int:
    if args.job == "certs":
        return make_certs(args.directory, args.clients, args.host)
    if args.job == "compose":
        return write_compose(args.file, args.nodes, args.superlink)
    from fedfer.runs.bundles import prepare_nodes

    prepare_nodes(options_from_args(args), args.directory)
    return 0


def make_certs(directory: Path, num_nodes: int, hosts: list[str]) -> int:
    """The credentials of a multi-machine deployment, and what goes where."""
    from fedfer.flower.certs import LOOPBACK_HOSTS, make_credentials

    if num_nodes < 1:
        raise ValueError(f"--clients must be at least 1 (one key pair per SuperNode), got {num_nodes}")
    credentials = make_credentials(directory, num_nodes, hosts)  # ValueError: a --host no certificate can hold
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
    """One lab host's compose file (see fedfer.runs.compose)."""
    import shlex

    from fedfer.io import atomic_write_text
    from fedfer.runs.compose import compose_text, node_range

    indices = node_range(nodes) if nodes else range(0)
    if superlink is not None and not indices:
        raise ValueError("--superlink writes a SuperNode host's file: give its --nodes, e.g. 16-30")
    command = ["fedfer", "lab", "compose", str(path)]
    command += ["--nodes", nodes] if nodes else []
    command += ["--superlink", superlink] if superlink else []
    atomic_write_text(path, compose_text(indices, superlink, shlex.join(command)))
    role = f"SuperNodes dialling {superlink}" if superlink else "the SuperLink and SuperNodes"
    print(f"{path}: {role} {list(indices) or 'none'}")
    return 0
