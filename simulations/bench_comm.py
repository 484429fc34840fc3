"""Communication cost per round: payload scopes × codecs, their accuracy, growth, simulation vs deployment.

Every byte figure is read from the server's round log, i.e. measured on the serialized Flower
messages (`fedfer.federation.strategy.message_bytes`), never computed from parameter counts. Parts,
each a set of real Flower federations; each part's results are merged into
`<out>/communication.json`, and `communication.md` / `communication.png` are redrawn from it:

- `codecs`: payload v, codecs float32 / float16 / int8 both ways, on every seed (31 clients,
  2 rounds); bytes, seconds and the macro / weighted F1 of the central model before, the
  personalized models (round 1) and the central model after. The central stage is shared per seed.
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
from study_args import study_parser

from fedfer.config import CODECS, PAYLOADS
from fedfer.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from fedfer.runconfig import FederationConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions, options_from_args
from fedfer.runs.simulate import simulate, simulate_prepared
from fedfer.runs.study import prepare_run

PARTS = ("codecs", "payloads", "growth", "deploy")
MODELS = (
    ("central_before", "central before"),
    ("personalized", "personalized (r1)"),
    ("central_after", "central after"),
)
MB = 1e6


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


def per_round_bytes(entry: dict) -> tuple[float, float]:
    """Mean bytes per client per round, up and down, over the entry's rounds."""
    rounds = entry["rounds"]
    return float(np.mean([r["up_mean"] for r in rounds])), float(np.mean([r["down_mean"] for r in rounds]))


def codec_rows(out: dict) -> list[dict]:
    """One row per codec: bytes and the accuracy over seeds (mean, sample std)."""
    rows = []
    for codec in CODECS:
        entries = [e for e in out.get("codecs", {}).values() if e["codec"] == codec]
        if not entries:
            continue
        row = {"codec": codec, "seeds": sorted(e["seed"] for e in entries), "bytes": per_round_bytes(entries[0])}
        row["seconds"] = float(np.mean([r["seconds"] for e in entries for r in e["rounds"]]))
        for key, _ in MODELS:
            for metric in ("macro_f1", "weighted_f1"):
                values = 100 * np.array([e[key][metric] for e in entries])
                row[f"{key}/{metric}"] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
                if codec != "float32" and out["codecs"].get(f"float32/seed{entries[0]['seed']}"):
                    reference = [out["codecs"].get(f"float32/seed{e['seed']}") for e in entries]
                    diffs = [100 * (e[key][metric] - r[key][metric]) for e, r in zip(entries, reference) if r]
                    row[f"{key}/{metric}/delta"] = float(np.mean(diffs)) if diffs else None
        rows.append(row)
    return rows


def write_report(out: dict, folder: Path) -> None:
    lines = ["# Communication per round", ""]
    lines += [
        f"World `{out.get('world', '?')}`; bytes are per client per round, measured on Flower's serialized messages.",
        "",
    ]
    rows = codec_rows(out)
    reference = next((r for r in rows if r["codec"] == "float32"), None)
    if rows:
        lines += ["## Codecs (payload v, both ways)", ""]
        lines += [
            "| codec | up bytes | down bytes | × float32 | s/round | "
            + " | ".join(f"{label} macro / weighted F1" for _, label in MODELS)
            + " | Δ vs float32, same seeds: personalized / central after (macro; weighted) |",
            "|---" * (6 + len(MODELS)) + "|",
        ]
        for r in rows:
            ratio = r["bytes"][0] / reference["bytes"][0] if reference else float("nan")
            cells = [
                f"{r[f'{k}/macro_f1'][0]:.1f} ± {r[f'{k}/macro_f1'][1]:.1f} / "
                f"{r[f'{k}/weighted_f1'][0]:.1f} ± {r[f'{k}/weighted_f1'][1]:.1f}"
                for k, _ in MODELS
            ]
            delta_cell = " / ".join(
                f"{r[f'{k}/macro_f1/delta']:+.2f}; {r[f'{k}/weighted_f1/delta']:+.2f}"
                for k in ("personalized", "central_after")
                if r.get(f"{k}/macro_f1/delta") is not None
            )
            lines.append(
                f"| {r['codec']} | {r['bytes'][0]:,.0f} | {r['bytes'][1]:,.0f} | {ratio:.3f} | {r['seconds']:.1f} | "
                + " | ".join(cells)
                + f" | {delta_cell or '(reference)'} |"
            )
        lines += ["", f"F1 in percent, mean ± sample std over seeds {rows[0]['seeds']}.", ""]
    scopes = scope_table(out)
    if scopes:
        lines += ["## Payload × codec (bytes per client per round)", ""]
        lines += ["| payload | codec | up bytes | down bytes | s/round | clients |", "|---|---|---|---|---|---|"]
        lines += [
            f"| {p} | {c} | {up:,.0f} | {down:,.0f} | {s:.1f} | {n} |" for (p, c), (up, down, s, n) in scopes.items()
        ]
        lines.append("")
    if out.get("growth"):
        lines += ["## Growth (payload v, float32)", ""]
        lines += [
            "| clients | rounds | up bytes / client / round (min–max) | down bytes / client / round | s per round |",
            "|---|---|---|---|---|",
        ]
        for e in sorted(out["growth"].values(), key=lambda e: (e["num_rounds"], e["clients"])):
            up_lo, up_hi = min(r["up_min"] for r in e["rounds"]), max(r["up_max"] for r in e["rounds"])
            seconds = ", ".join(f"{r['seconds']:.1f}" for r in e["rounds"])
            up, down = per_round_bytes(e)
            lines.append(
                f"| {e['clients']:,} | {e['num_rounds']} | {up:,.0f} ({up_lo:,}–{up_hi:,}) | {down:,.0f} | {seconds} |"
            )
        lines.append("")
    if out.get("deploy"):
        d = out["deploy"]
        lines += [f"## Simulation vs deployment (tiny world, {d['clients']} clients, {d['num_rounds']} rounds)", ""]
        lines += [
            "| mode | s per round | fedfer bytes / round (up + down, train) | SuperLink in / out per round "
            "| wire to / from SuperLink per round | framing in / out |",
            "|---|---|---|---|---|---|",
        ]
        for mode, m in d["modes"].items():
            fedfer_bytes = np.mean([r["up_total"] + r["down_total"] for r in m["rounds"]])
            t, w = m.get("superlink_traffic"), m.get("wire")
            link = (
                f"{t['inbound_bytes'] / d['num_rounds']:,.0f} / {t['outbound_bytes'] / d['num_rounds']:,.0f}"
                if t
                else "– (no network)"
            )
            on_wire = (
                f"{w['to_superlink'] / d['num_rounds']:,.0f} / {w['from_superlink'] / d['num_rounds']:,.0f} | "
                f"{w['overhead_in_percent']:+.1f}% / {w['overhead_out_percent']:+.1f}%"
                if w
                else "– | –"
            )
            seconds = ", ".join(f"{r['seconds']:.1f}" for r in m["rounds"])
            lines.append(f"| {mode} | {seconds} | {fedfer_bytes:,.0f} | {link} | {on_wire} |")
        fab = next((m["wire"]["fab_bytes"] for m in d["modes"].values() if m.get("wire")), None)
        if fab:
            lines += [
                "",
                f"Wire: the SuperNodes' TCP connections through a counting relay, the whole run per round, with "
                f"one FAB download of {fab:,} bytes per SuperNode; framing: wire over SuperLink count − 1, FABs out.",
            ]
        imports = d.get("clientapp_import_seconds")
        if imports:
            lines += ["", f"A fresh Python importing the ClientApp: {', '.join(f'{s:.1f}' for s in imports)} s."]
        lines.append("")
    atomic_write_text(folder / "communication.md", "\n".join(lines) + "\n")
    plot(out, rows, scopes, folder / "communication.png")


def seconds_per_round(entry: dict) -> float:
    return float(np.mean([r["seconds"] for r in entry["rounds"]]))


def scope_table(out: dict) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    """(payload, codec) → (up, down bytes per client per round, seconds per round, clients)."""
    table = {}
    for e in out.get("codecs", {}).values():
        if e["seed"] == min(x["seed"] for x in out["codecs"].values()):
            up, down = per_round_bytes(e)
            table[("v", e["codec"])] = (
                up,
                down,
                float(np.mean([r["seconds"] for r in e["rounds"]])),
                e["rounds"][0]["clients"],
            )
    for e in out.get("payloads", {}).values():
        up, down = per_round_bytes(e)
        table[(e["payload"], e["codec"])] = (
            up,
            down,
            float(np.mean([r["seconds"] for r in e["rounds"]])),
            e["clients"],
        )
    return dict(sorted(table.items(), key=lambda kv: (PAYLOADS.index(kv[0][0]), CODECS.index(kv[0][1]))))


def plot(out: dict, rows: list[dict], scopes: dict, path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    width = 0.27
    for i, codec in enumerate(CODECS):
        xs = [j + (i - 1) * width for j, p in enumerate(PAYLOADS) if (p, codec) in scopes]
        ys = [scopes[(p, codec)][0] for p in PAYLOADS if (p, codec) in scopes]
        ax.bar(xs, ys, width, label=codec)
    ax.set_xticks(range(len(PAYLOADS)), PAYLOADS)
    if scopes:
        ax.set_yscale("log")
    ax.set_ylabel("bytes per client per round (uplink)")
    ax.set_title("What travels × codec")
    ax.legend()
    ax = axes[1]
    for key, label in MODELS:
        xs = [r["bytes"][0] for r in rows]
        ys = [r[f"{key}/macro_f1"][0] for r in rows]
        es = [r[f"{key}/macro_f1"][1] for r in rows]
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label)
    for r in rows:
        ax.annotate(r["codec"], (r["bytes"][0], r["central_after/macro_f1"][0]), fontsize=8)
    if rows:
        ax.set_xscale("log")
    ax.set_xlabel("uplink bytes per client per round")
    ax.set_ylabel("macro F1 (%), mean ± std over seeds")
    ax.set_title("Accuracy against bytes (payload v)")
    ax.legend(fontsize=8)
    ax = axes[2]
    growth = [e for e in out.get("growth", {}).values() if e["num_rounds"] == 2]
    if growth:
        growth.sort(key=lambda e: e["clients"])
        n = [e["clients"] for e in growth]
        ax.plot(n, [per_round_bytes(e)[0] for e in growth], "o-", label="bytes / client / round (up)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("clients")
        ax.set_ylabel("bytes")
        twin = ax.twinx()
        twin.plot(n, [np.mean([r["seconds"] for r in e["rounds"]]) for e in growth], "s--", color="C3")
        twin.set_ylabel("seconds per round", color="C3")
        ax.set_title("Growth (v, float32, 2 rounds)")
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


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
    if not args.report_only:
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
