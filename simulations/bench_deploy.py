"""Deployment vs simulation of the same work: seconds per round and bytes per round.

Both run the same prepared run (3 subjects of random features, briefly trained g() and v(), the
test-suite fixture) with the same seeds: once as a Flower simulation, once as a real SuperLink with
3 SuperNodes on loopback (TLS and node authentication unless --insecure). Prints a Markdown table.

    python simulations/bench_deploy.py [--rounds 2] [--insecure] [--modes simulation subprocess forked] [--out DIR]
        [--no-client-eval] [--timeline]

Deployment modes are how each SuperNode runs its ClientApps: `subprocess` (Flower's default, a
fresh Python process per message) or `forked` (`fedfer.flower.forked_clientapps`).

Seconds per round are the strategy's (configure_train → aggregate_evaluate, so one train and one
evaluate exchange); "server bytes" are the serialized train messages the ServerApp measured (both
ways); "SuperLink bytes" are what the SuperLink itself counted for the whole run (`flwr ls`,
network-traffic: train and evaluate messages, divided by the number of rounds). A simulation has no
network, so the SuperLink reports nothing there. "Wire bytes" are what the SuperNodes' TCP
connections to the SuperLink carried, counted by a relay they dial instead
(`fedfer.flower.relay`; TLS passes through it end to end): the whole run, FAB downloads, polls,
heartbeats and TLS handshakes included; "framing" is the wire's excess over the SuperLink's counts
once the FAB downloads (one per SuperNode, its size built here as `flwr run` builds it) are taken out.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from deploy_timeline import markdown, timeline
from flwr.cli.build import build_fab_from_disk
from study_args import study_parser

from fedfer.config import CLIENTAPP_LAUNCHERS
from fedfer.flower.relay import CountingRelay
from fedfer.flower.runtime import APP_DIR
from fedfer.rundir import RunDir
from fedfer.runs.deployment import deploy_prepared
from fedfer.runs.simulate import simulate_prepared
from fedfer.testing import build_fake_run

MB = 1e6


def round_figures(run_dir: Path) -> tuple[list[float], float]:
    """Seconds of each round and the mean server-measured bytes per round (train messages, both ways)."""
    rounds = json.loads(RunDir(run_dir).rounds.read_text())
    server_bytes = sum(r["bytes_up_total"] + r["bytes_down_total"] for r in rounds) / len(rounds)
    return [r["seconds"] for r in rounds], server_bytes


def measure(
    root: Path, rounds: int, modes: list[str], insecure: bool = False, client_eval: bool = True
) -> dict[str, dict]:
    """Run the fake 3-subject run once per mode under `root`; per mode: `flwr run` seconds, seconds per
    round, server-measured bytes per round and the SuperLink's traffic (deployments). Without
    `client_eval` the server sends no evaluate messages: one exchange per round."""
    values = {**build_fake_run(root / "prepared"), "num-server-rounds": rounds, "client-eval": client_eval}
    runs = {}
    for mode in modes:
        run_dir = root / mode
        values_here = {**values, "run-dir": str(run_dir.resolve())}
        if mode == "simulation":
            runs[mode] = simulate_prepared(run_dir, values_here)
        else:
            with CountingRelay() as relay:
                runs[mode] = deploy_prepared(
                    run_dir, values_here, insecure=insecure, launcher=mode, node_route=relay.route
                )
            runs[mode]["wire"] = wire_figures(relay, runs[mode]["superlink_traffic"], clients=3)
        runs[mode]["rounds"], runs[mode]["server_bytes"] = round_figures(run_dir)
    return runs


def wire_figures(relay: CountingRelay, traffic: dict, clients: int) -> dict[str, float]:
    """The relay's counts beside the SuperLink's: bytes each way, the FAB downloads, and the framing
    overhead in % of the SuperLink's counts (wire minus FABs, over SuperLink, minus 1)."""
    fab = len(build_fab_from_disk(APP_DIR))
    to_link, from_link = relay.bytes_to_target, relay.bytes_from_target
    return {
        "to_superlink": to_link,
        "from_superlink": from_link,
        "connections": relay.connections,
        "fab_bytes": fab,
        "overhead_in_percent": 100 * (to_link / traffic["inbound_bytes"] - 1),
        "overhead_out_percent": 100 * ((from_link - clients * fab) / traffic["outbound_bytes"] - 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--insecure", action="store_true", help="deploy without TLS and node authentication")
    parser.add_argument(
        "--modes", nargs="+", default=["simulation", "subprocess"], choices=("simulation", *CLIENTAPP_LAUNCHERS)
    )
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temporary directory)")
    parser.add_argument(
        "--no-client-eval",
        dest="client_eval",
        action="store_false",
        help="no evaluate messages (the clients' per-round scores): one exchange per round",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="Flower's processes log with timestamps (FLWR_LOG_LEVEL=DEBUG, a little slower): print where each "
        "deployed exchange's seconds go (deploy_timeline.py)",
    )
    args = parser.parse_args(argv)
    if args.timeline:
        os.environ["FLWR_LOG_LEVEL"] = "DEBUG"  # the Flower processes inherit it (fedfer's flower_env)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        runs = measure(root, args.rounds, args.modes, args.insecure, args.client_eval)
        timelines = {mode: timeline(root / mode) for mode in runs if mode != "simulation" and args.timeline}
    security = "insecure" if args.insecure else "TLS + node auth"
    evaluation = "train and evaluate messages" if args.client_eval else "train messages only"
    print(f"\n3 clients, {args.rounds} rounds ({evaluation}), fake features; one v() is about 0.85 MB\n")
    print(
        "| mode | `flwr run` s | s per round | server bytes / round (MB) | SuperLink in / out per round (MB) "
        "| wire to / from SuperLink, run (MB) | framing in / out |"
    )
    print("|---|---|---|---|---|---|---|")
    for mode, r in runs.items():
        traffic, wire = r.get("superlink_traffic"), r.get("wire")
        link = (
            f"{traffic['inbound_bytes'] / args.rounds / MB:.2f} / {traffic['outbound_bytes'] / args.rounds / MB:.2f}"
            if traffic
            else "–"
        )
        on_wire = (
            f"{wire['to_superlink'] / MB:.2f} / {wire['from_superlink'] / MB:.2f} | "
            f"{wire['overhead_in_percent']:+.1f}% / {wire['overhead_out_percent']:+.1f}%"
            if wire
            else "– | –"
        )
        label = f"deployment, {mode} ClientApps ({security})" if traffic else mode
        print(
            f"| {label} | {r['flower_seconds']:.1f} | {', '.join(f'{s:.1f}' for s in r['rounds'])} | "
            f"{r['server_bytes'] / MB:.2f} | {link} | {on_wire} |"
        )
    for mode, table in timelines.items():
        print(f"\nSeconds of each exchange, {mode} ClientApps (means over nodes and rounds):\n")
        print(markdown(table))


if __name__ == "__main__":
    main()
