"""Deployment vs simulation of the same work: seconds per round and bytes per round.

Both run the same prepared run (3 subjects of random features, briefly trained g() and v(), the
test-suite fixture) with the same seeds: once as a Flower simulation, once as a real SuperLink with
3 SuperNodes on loopback (TLS and node authentication unless --insecure). Prints a Markdown table.

    python simulations/bench_deploy.py [--rounds 2] [--insecure] [--modes simulation subprocess forked] [--out DIR]
        [--wires per-tensor packed+evaluate packed] [--no-client-eval] [--timeline]

Deployment modes are how each SuperNode runs its ClientApps: `subprocess` (Flower's default, a
fresh Python process per message) or `forked` (`fedfer.flower.forked_clientapps`). Wires are how a
round's messages are laid out (`WIRES`): `per-tensor` sends v() as its 22 arrays and the clients'
scores in an evaluate exchange of their own; `packed+evaluate` packs v() into one array; `packed`
(the default run config) also carries the scores in the train reply, one exchange per round.

Seconds per round are the strategy's (configure_train → aggregate_evaluate: the train exchange, and
the evaluate exchange where there is one); "server bytes" are the serialized train messages the ServerApp measured (both
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
WIRES = {  # run-config values of each wire
    "per-tensor": {"pack-arrays": False, "scores-in-train": False},
    "packed+evaluate": {"pack-arrays": True, "scores-in-train": False},
    "packed": {"pack-arrays": True, "scores-in-train": True},
}


def round_figures(run_dir: Path) -> tuple[list[float], float]:
    """Seconds of each round and the mean server-measured bytes per round (train messages, both ways)."""
    rounds = json.loads(RunDir(run_dir).rounds.read_text())
    server_bytes = sum(r["bytes_up_total"] + r["bytes_down_total"] for r in rounds) / len(rounds)
    return [r["seconds"] for r in rounds], server_bytes


def measure(
    root: Path, rounds: int, modes: list[str], wires: list[str], insecure: bool = False, client_eval: bool = True
) -> dict[tuple[str, str], dict]:
    """Run the fake 3-subject run once per mode and wire under `root`; per run: `flwr run` seconds,
    seconds per round, server-measured bytes per round and the SuperLink's traffic (deployments).
    Without `client_eval` the clients send no scores: one exchange per round whatever the wire."""
    values = {**build_fake_run(root / "prepared"), "num-server-rounds": rounds, "client-eval": client_eval}
    runs = {}
    for mode in modes:
        for wire in wires:
            run_dir = root / f"{mode}-{wire}"
            values_here = {**values, **WIRES[wire], "run-dir": str(run_dir.resolve())}
            if mode == "simulation":
                run = simulate_prepared(run_dir, values_here)
            else:
                with CountingRelay() as relay:
                    run = deploy_prepared(
                        run_dir, values_here, insecure=insecure, launcher=mode, node_route=relay.route
                    )
                run["wire"] = wire_figures(relay, run["superlink_traffic"], clients=3)
            run["rounds"], run["server_bytes"] = round_figures(run_dir)
            runs[mode, wire] = run
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
    parser.add_argument(
        "--wires", nargs="+", default=["packed"], choices=list(WIRES), help="message layouts to compare (WIRES)"
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
        runs = measure(root, args.rounds, args.modes, args.wires, args.insecure, args.client_eval)
        timelines = {
            key: timeline(root / f"{key[0]}-{key[1]}") for key in runs if key[0] != "simulation" and args.timeline
        }
    security = "insecure" if args.insecure else "TLS + node auth"
    evaluation = "with the clients' scores" if args.client_eval else "no client scores"
    print(f"\n3 clients, {args.rounds} rounds ({evaluation}), fake features; one v() is about 0.85 MB\n")
    print(
        "| mode | wire | `flwr run` s | s per round | server bytes / round (MB) | SuperLink in / out per round (MB) "
        "| wire to / from SuperLink, run (MB) | framing in / out |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (mode, wire_name), r in runs.items():
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
            f"| {label} | {wire_name} | {r['flower_seconds']:.1f} | {', '.join(f'{s:.1f}' for s in r['rounds'])} | "
            f"{r['server_bytes'] / MB:.2f} | {link} | {on_wire} |"
        )
    for (mode, wire_name), table in timelines.items():
        print(f"\nSeconds of each exchange, {mode} ClientApps, {wire_name} (means over nodes and rounds):\n")
        print(markdown(table))


if __name__ == "__main__":
    main()
