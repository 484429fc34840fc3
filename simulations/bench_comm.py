"""Communication cost per round: payload scopes × codecs, their accuracy, growth, simulation vs deployment.

Every byte figure is read from the server's round log, i.e. measured on the serialized Flower
messages (`fedfer.federation.strategy.message_bytes`), never computed from parameter counts. Parts,
each a set of real Flower federations; each part's results are merged into
`<out>/communication.json`, and `communication.md` / `communication.png` are redrawn from it, with
`published.json`: the docs' tables `codecs`, `payloads`, `growth` of the parts measured, stamped (copy
it to docs/results/communication.json):

- `codecs`: payload v, codecs float32 / float16 / int8 both ways, on every seed (31 clients,
  2 rounds); bytes, seconds and the macro / weighted F1 of the central model before, the
  personalized models (round 1) and the central model after. The stages before federation are shared per seed.
- `payloads`: payloads g+v and f+g+v with each codec, seed 0, `--payload-clients` clients (bytes per
  client do not depend on the number of clients; the growth part checks that). g() and f() travel
  and are averaged but are not trained by the clients, so these runs measure bytes and seconds only.
- `growth`: payload v, float32, seed 0: 31 / 100 / 1,000 clients (2 rounds) and 31 clients for
  5 / 10 rounds. Beyond the world's 31 test actors, the subjects file lists the same 31 subject
  folders again and again (client i serves subject i mod 31); the server's own scoring is off.
- `deploy`: the same 3-client run of the tiny world as a simulation and as real SuperLink +
  SuperNode processes with TLS and node authentication (`fedfer.runs.deployment`): seconds per
  round, fedfer's byte counts, the SuperLink's (`flwr ls`) and the wire's (the SuperNodes dial the
  SuperLink through `fedfer.flower.relay.CountingRelay`), per ClientApp launch mode.

    python simulations/bench_comm.py --world small --seeds 0 1 2 --out results/comm
    python simulations/bench_comm.py --parts deploy --out results/comm      # one part only
    python simulations/bench_comm.py --report-only --out results/comm       # redraw md/png
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from comm_report import MODELS, write_report
from study_args import study_parser

from fedfer.config import CODECS, PAYLOADS
from fedfer.io import atomic_write_json
from fedfer.publish.study_settings import settings_of
from fedfer.runconfig import FederationConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions, options_from_args
from fedfer.runs.simulate import simulate, simulate_prepared
from fedfer.runs.study import prepare_run

PARTS = ("codecs", "payloads", "growth", "deploy")


def round_bytes(run_dir: Path) -> dict[str, Any]:
    """Per round: bytes per client up / down (mean, min, max over clients), seconds."""
    rounds = json.loads(RunDir(run_dir).rounds.read_text())
    out = []
    for r in rounds:
        up, down = list(r["bytes_up"].values()), list(r["bytes_down"].values())
        out.append(
            {
                "round": r["round"],
                "seconds": r["seconds"],
                "clients": len(down),
                "up_mean": float(np.mean(up)) if up else 0.0,
                "up_min": min(up, default=0),
                "up_max": max(up, default=0),
                "down_mean": float(np.mean(down)) if down else 0.0,
                "down_min": min(down, default=0),
                "down_max": max(down, default=0),
                "up_total": sum(up),
                "down_total": sum(down),
                "received_dtypes": r.get("received_dtypes", {}),
            }
        )
    return {"rounds": out}


def accuracy(run_dir: Path) -> dict[str, dict[str, float]]:
    summary = json.loads(RunDir(run_dir).summary.read_text())
    return {
        key: {"macro_f1": summary[key]["macro_f1"], "weighted_f1": summary[key]["weighted_f1"]} for key, _ in MODELS
    }


def run_variant(base: RunOptions, name: str, clients: int | None = None, **changes: Any) -> Path:
    """`fedfer run` of `base` named `name`, with `changes` to its run config (and `clients` subjects when given)."""
    federation = replace(base.federation, **changes)
    return simulate(replace(base, name=name, clients=clients or base.clients, federation=federation))


def part_codecs(base: RunOptions, seeds: list[int], codecs: list[str], out: dict) -> None:
    for seed in seeds:
        for codec in codecs:
            if f"{codec}/seed{seed}" in out.get("codecs", {}):
                continue  # measured by an earlier invocation
            personalize = replace(base.federation.personalize, seed=seed)
            options = replace(
                base, task=replace(base.task, seed=seed), federation=replace(base.federation, personalize=personalize)
            )
            run_dir = run_variant(options, f"comm-codec-{codec}-seed{seed}", codec_up=codec, codec_down=codec)
            entry = {"payload": "v", "codec": codec, "seed": seed, **round_bytes(run_dir), **accuracy(run_dir)}
            out.setdefault("codecs", {})[f"{codec}/seed{seed}"] = entry
            save(out)


def part_payloads(base: RunOptions, clients: int, rounds: int, out: dict) -> None:
    for payload in PAYLOADS[1:]:
        for codec in CODECS:
            run_dir = run_variant(
                base,
                f"comm-payload-{payload}-{codec}",
                num_server_rounds=rounds,
                clients=clients,
                payload=payload,
                codec_up=codec,
                codec_down=codec,
            )
            out.setdefault("payloads", {})[f"{payload}/{codec}"] = {
                "payload": payload,
                "codec": codec,
                "clients": clients,
                **round_bytes(run_dir),
            }
            save(out)


def repeated_run(base: RunOptions, name: str, clients: int, rounds: int) -> Path:
    """A prepared run whose subjects file lists the world's test subjects again and again up to `clients`."""
    federation = replace(base.federation, num_server_rounds=rounds, central_eval=False)
    prepared = prepare_run(replace(base, name=name, federation=federation))
    subjects = json.loads(prepared.run.subjects_file.read_text())
    atomic_write_json(prepared.run.subjects_file, [subjects[i % len(subjects)] for i in range(clients)])
    values = replace(FederationConfig.from_run_config(prepared.values), num_clients=clients).to_run_config()
    started = time.monotonic()
    simulate_prepared(prepared.run.root, values, client_cpus=base.client_cpus)
    print(f"{clients} clients × {rounds} rounds: {time.monotonic() - started:.0f} s", flush=True)
    return prepared.run.root


def part_growth(base: RunOptions, clients: list[int], rounds: list[int], out: dict) -> None:
    cases = [(n, 2) for n in clients] + [(31, r) for r in rounds if r != 2]
    for n, r in cases:
        key = f"{n}x{r}"
        if key in out.get("growth", {}):
            continue  # long runs: a rerun keeps what an earlier invocation measured
        run_dir = repeated_run(base, f"comm-growth-{key}", n, r)
        out.setdefault("growth", {})[key] = {"clients": n, "num_rounds": r, **round_bytes(run_dir)}
        save(out)


def part_deploy(args: argparse.Namespace, out: dict) -> None:
    """`bench_deploy.measure` (the test suite's 3-subject run of random features, 12 clips each like
    the tiny world's actors): simulation and deployment with each ClientApp launcher."""
    from bench_deploy import measure

    runs = measure(args.out / "runs" / "comm-deploy", args.deploy_rounds, args.deploy_modes)
    out["deploy"] = {"clients": 3, "num_rounds": args.deploy_rounds, "modes": {}}
    for mode, r in runs.items():
        out["deploy"]["modes"][mode] = {**r, **round_bytes(args.out / "runs" / "comm-deploy" / mode)}
    out["deploy"]["clientapp_import_seconds"] = clientapp_import_seconds()
    save(out)


def clientapp_import_seconds(repeats: int = 3) -> list[float]:
    """What a fresh ClientApp process pays before its first message: a new Python importing the app."""
    import subprocess
    import sys

    times = []
    for _ in range(repeats):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import client_app"], check=True, cwd=Path(__file__).parents[1])
        times.append(time.monotonic() - started)
    return times


OUT: dict[str, Path] = {}


def save(out: dict) -> None:
    atomic_write_json(OUT["json"], out)
    write_report(out, OUT["json"].parent)


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/comm", flags="world")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--codecs", nargs="+", choices=CODECS, default=list(CODECS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--payload-clients", type=int, default=8)
    parser.add_argument("--payload-rounds", type=int, default=2)
    parser.add_argument("--growth-clients", type=int, nargs="+", default=[31, 100, 1000])
    parser.add_argument("--growth-rounds", type=int, nargs="+", default=[2, 5, 10])
    parser.add_argument("--deploy-rounds", type=int, default=3)
    parser.add_argument("--deploy-modes", nargs="+", default=["simulation", "subprocess", "forked"])
    parser.add_argument("--report-only", action="store_true", help="no runs: redraw the md/png from the json")
    parser.add_argument(
        "--merge", type=Path, nargs="+", default=[], help="communication.json files of other invocations to merge in"
    )
    args = parser.parse_args(argv)
    OUT["json"] = args.out / "communication.json"
    out = json.loads(OUT["json"].read_text()) if OUT["json"].is_file() else {}
    base = options_from_args(args)
    base = replace(base, results=args.out / "runs", federation=replace(base.federation, num_server_rounds=args.rounds))
    for other in args.merge:
        for key, value in json.loads(other.read_text()).items():
            out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else out.get(key, value)
    out["world"] = base.world
    if not args.report_only:  # the stamp of the docs' tables; a redraw keeps that of the runs
        keys = ("world", "world seed", "image size", "batchnorm", "teacher", "P", "threshold")
        out["settings"] = settings_of(base, *keys)
        if "codecs" in args.parts:
            part_codecs(base, args.seeds, args.codecs, out)
        if "payloads" in args.parts:
            part_payloads(base, args.payload_clients, args.payload_rounds, out)
        if "growth" in args.parts:
            part_growth(base, args.growth_clients, args.growth_rounds, out)
        if "deploy" in args.parts:
            part_deploy(args, out)
    save(out)
    print((args.out / "communication.md").read_text())


if __name__ == "__main__":
    main()
