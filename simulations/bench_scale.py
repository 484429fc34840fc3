"""Federations at scale: fedfer's crowd against Flower's floor, side by side in one run.

For each crowd size N, `fraction-train` f and subjects per node S, two Flower simulations with the
same nodes (ceil(N / S)), rounds and sampling:

- **trivial**: `simulations/trivial_app`, a ClientApp that trains a head of v()'s size (208,838
  parameters, 2,944 statistics) for `--steps` Adam steps on random clips per subject and replies
  with the mean state: Flower's own cost for this message size and structure;
- **fedfer**: the crowd (`fedfer.synth.crowd`, fitted to a prepared run's subjects): every
  subject is drawn when its node is sampled, pseudo-labelled by g(), top-P selected, 2 epochs of v().

Per row: wall time of `flwr run` (start-up included) and of the rounds alone (from the first
`[ROUND 1/` line of Flower's log to the end), client-rounds (subjects trained, summed over rounds),
client-rounds/s over the rounds, peak resident memory of the whole process tree (this process and
every descendant: SuperLink, ServerApp, Ray's processes and workers; RSS summed, so shared pages
count once per process), fedfer / trivial, and the load average before the run (a shared machine).
Writes OUT.json and OUT.md after every row.

    python simulations/bench_scale.py --prepared results/small-K6-seed0 --sizes 100 1000 10000 \\
        --fractions 1.0 0.1 --subjects-per-node 50 --out results/bench_scale

`--prepared` is any run folder `fedfer run` / `fedfer prepare` wrote (its g(), central v() and subjects).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from study_args import study_parser

from fedfer.federation.protocol import SUBJECTS
from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.runconfig import CrowdConfig
from fedfer.rundir import RunDir
from fedfer.runs.scale import crowd_model_of, simulate_crowd
from fedfer.runs.simulate import simulate_prepared
from fedfer.synth.crowd import nodes_for

TRIVIAL_APP = Path(__file__).resolve().parent / "trivial_app"
GIB = 2**30
PAGE = os.sysconf("SC_PAGE_SIZE")
ROUND_LINE = re.compile(r"\[ROUND (\d+)/")
ROUND_END = "aggregate_train: Received"  # Flower logs it once per round, when the round's replies are in


def tree_rss_bytes(root: int) -> int:
    """Summed resident memory of process `root` and all its descendants (Linux /proc)."""
    parents, rss = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, ..., rss (pages) is field 24
        except OSError:
            continue  # ended meanwhile
        pid = int(stat.parent.name)
        parents[pid], rss[pid] = int(fields[1]), int(fields[21]) * PAGE
    tree, frontier = {root}, [root]
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    while frontier:
        for child in children.get(frontier.pop(), []):
            tree.add(child)
            frontier.append(child)
    return sum(rss.get(pid, 0) for pid in tree)


@dataclass
class TreeSampler:
    """Samples the summed RSS of this process tree, and when each of Flower's rounds starts and gets
    its replies (its log; to within `period_s`)."""

    flower_log: Path
    period_s: float = 0.5
    peak_bytes: int = 0
    round_starts: dict[int, float] = field(default_factory=dict)
    round_ends: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(os.getpid()))
            if self.flower_log.is_file():
                text = self.flower_log.read_text(errors="replace")
                for r in ROUND_LINE.findall(text):
                    self.round_starts.setdefault(int(r), time.monotonic())
                for r in range(1, text.count(ROUND_END) + 1):
                    self.round_ends.setdefault(r, time.monotonic())
            self._stop.wait(self.period_s)

    def __enter__(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_trivial(out: Path, size: int, fraction: float, per_node: int, rounds: int, steps: int, cpus: int) -> int:
    """The trivial app; returns the client-rounds it ran (sampled nodes × subjects per node × rounds)."""
    nodes = nodes_for(size, per_node)
    values = {
        "num-server-rounds": rounds,
        "fraction-train": fraction,
        "num-clients": nodes,
        "subjects-per-node": per_node,
        "steps": steps,
    }
    simulate_prepared(out, values, num_nodes=nodes, app_dir=TRIVIAL_APP, client_cpus=cpus)
    return max(int(nodes * fraction), 1) * per_node * rounds  # FedAvg samples int(n·f) nodes, at least 1


def run_fedfer(
    out: Path, prepared: Path, model: Path, size: int, fraction: float, per_node: int, rounds: int, cpus: int
) -> int:
    """The crowd federation; returns the client-rounds the server recorded (subjects that replied)."""
    crowd = CrowdConfig(model=str(model), size=size, subjects_per_node=per_node)
    simulate_crowd(prepared, out, crowd, rounds=rounds, fraction_train=fraction, client_cpus=cpus)
    recorded = json.loads(RunDir(out).rounds.read_text())
    return sum(int(c["train"].get(SUBJECTS, 1)) for r in recorded for c in r["clients"].values() if "train" in c)


def measure(name: str, out: Path, job: Callable[[], int]) -> dict:
    """Run `job` (it returns client-rounds) under the sampler. Round r's seconds run from its `[ROUND r/`
    line to its `aggregate_train: Received` line (sending, training, replies); the first round also
    pays the ClientApp processes' cold start, so throughput is given over all rounds and over the
    rounds after the first (warm)."""
    started = time.monotonic()
    load = os.getloadavg()[0]
    with TreeSampler(RunDir(out).flower_log) as sampler:
        client_rounds = job()
    ended = time.monotonic()
    rounds = sorted(set(sampler.round_starts) & set(sampler.round_ends))
    round_s = [sampler.round_ends[r] - sampler.round_starts[r] for r in rounds]
    rounds_s = sum(round_s) or ended - started
    warm_s = sum(round_s[1:])
    per_round = client_rounds / max(len(round_s), 1)
    return {
        "app": name,
        "wall_s": round(ended - started, 1),
        "round_s": [round(x, 1) for x in round_s],
        "rounds_s": round(rounds_s, 1),
        "client_rounds": client_rounds,
        "client_rounds_per_s": round(client_rounds / rounds_s, 2),
        "warm_client_rounds_per_s": round(per_round * (len(round_s) - 1) / warm_s, 2) if warm_s else None,
        "peak_rss_gib": round(sampler.peak_bytes / GIB, 2),
        "load_before": round(load, 1),
    }


def markdown(rows: list[dict]) -> str:
    head = (
        "| clients | per node | nodes | fraction | rounds | app | wall s | seconds per round | client-rounds | "
        "client-rounds/s (all / warm) | peak RSS GiB | fedfer / trivial (rounds s) | load |\n|" + "---|" * 13 + "\n"
    )
    lines = []
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
        lines.append(
            f"| {r['clients']:,} | {r['per_node']} | {r['nodes']:,} | {r['fraction']} | {r['rounds']} | {r['app']} | "
            f"{r['wall_s']} | {' / '.join(map(str, r['round_s']))} | {r['client_rounds']:,} | "
            f"{r['client_rounds_per_s']} / {r['warm_client_rounds_per_s']} | {r['peak_rss_gib']} | {ratio} | "
            f"{r['load_before']} |"
        )
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/bench_scale")
    parser.add_argument("--prepared", type=Path, required=True, help="a prepared run folder (g(), v(), subjects)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--subjects-per-node", type=int, nargs="+", default=[50])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4, help="Adam steps per subject of the trivial app")
    parser.add_argument("--apps", nargs="+", choices=("trivial", "fedfer"), default=["trivial", "fedfer"])
    parser.add_argument("--crowd-model", type=Path, help="a saved crowd model (default: fitted to --prepared)")
    parser.add_argument("--client-cpus", type=int, default=1, help="CPUs Ray reserves per simulated node")
    args = parser.parse_args(argv)

    rows: list[dict] = []
    cpus = args.client_cpus
    with tempfile.TemporaryDirectory(prefix="fedfer-scale-") as tmp:
        model = args.crowd_model or crowd_model_of(args.prepared, Path(tmp) / "model")
        for size in args.sizes:
            for per_node in args.subjects_per_node:
                for fraction in args.fractions:
                    nodes = nodes_for(size, per_node)
                    case = {"clients": size, "per_node": per_node, "nodes": nodes, "fraction": fraction}
                    case["rounds"] = args.rounds
                    measured = {}
                    for app in args.apps:
                        out = Path(tmp) / f"{app}-n{size}-s{per_node}-f{fraction}"
                        print(f"== {app}: {size} clients, {per_node} per node ({nodes} nodes), fraction {fraction}")
                        if app == "trivial":
                            job = partial(run_trivial, out, size, fraction, per_node, args.rounds, args.steps, cpus)
                        else:
                            job = partial(
                                run_fedfer, out, args.prepared, model, size, fraction, per_node, args.rounds, cpus
                            )
                        row = {**case, **measure(app, out, job)}
                        measured[app] = row
                        if app == "fedfer" and "trivial" in measured:
                            row["ratio"] = row["rounds_s"] / measured["trivial"]["rounds_s"]
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                        atomic_write_json(args.out.with_suffix(".json"), rows)
                        atomic_write_text(args.out.with_suffix(".md"), markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
