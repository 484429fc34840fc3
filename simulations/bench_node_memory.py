"""Memory of a deployment's processes: what to reserve per SuperNode (and its ClientApp) on a lab host.

Deploys a prepared run (random features, the test-suite fixture, with a CREMA-D actor's number of
clips per subject) on loopback with TLS and node authentication, and polls every process that
fedfer starts and their children (ClientApp and ServerApp processes) for their peak resident memory
(VmHWM). Prints, per process fedfer started, its own peak and, for each command among its children
(SuperExec, ServerApp or ClientApp processes), the largest peak; their sum is what a SuperNode (or
the SuperLink) holds at most while one app process of each kind runs.

    python simulations/bench_node_memory.py [--clients 3] [--clips 82]
"""

from __future__ import annotations

import tempfile
import threading
from collections import defaultdict
from pathlib import Path

from study_args import study_parser

from fedfer.flower.runtime import ProcessGroup
from fedfer.runs.deployment import deploy_prepared
from fedfer.testing import build_fake_run

MB = 2**20


def process_table() -> tuple[dict[int, int], dict[int, tuple[str, int]]]:
    """{pid: parent pid} and {pid: (command name, peak resident bytes)} of every live process."""
    parents, peaks = {}, {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        pid = int(status.parent.name)
        parents[pid] = int(fields["PPid"])
        if "VmHWM" in fields:
            peaks[pid] = (fields["Name"].strip(), int(fields["VmHWM"].split()[0]) * 1024)
    return parents, peaks


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--clips", type=int, default=82, help="clips per subject (CREMA-D: about 82 per actor)")
    args = parser.parse_args(argv)
    roots: dict[int, str] = {}  # pid of a process fedfer started → its name (superlink, supernode-<i>)
    original = ProcessGroup.start

    def start(group, name, command, env):
        process = original(group, name, command, env)
        roots[process.pid] = name
        return process

    ProcessGroup.start = start
    peaks: dict[int, tuple[str, str, int]] = {}  # pid → (root name, command name, peak bytes)
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.5):
            parents, table = process_table()
            for pid, (command, peak) in table.items():
                ancestor = pid
                while ancestor not in roots and ancestor in parents and ancestor > 1:
                    ancestor = parents[ancestor]
                if ancestor in roots:
                    peaks[pid] = (roots[ancestor], command, max(peak, peaks.get(pid, ("", "", 0))[2]))

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    with tempfile.TemporaryDirectory() as tmp:
        values = build_fake_run(Path(tmp) / "prepared", num_subjects=args.clients, clips_per_subject=args.clips)
        deploy_prepared(Path(tmp) / "run", {**values, "run-dir": str(Path(tmp) / "run")})
    done.set()
    watcher.join()
    own: dict[str, int] = defaultdict(int)  # root name → its own peak
    children: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # root → {command: largest peak}
    for pid, (root, command, peak) in peaks.items():
        if pid in roots:
            own[root] = max(own[root], peak)
        else:
            children[root][command] = max(children[root][command], peak)
    print(f"\n{args.clients} SuperNodes, {args.clips} clips per subject, 2 rounds; peak resident memory (MiB)\n")
    print("| process | own peak | largest child process, by command | own + largest of each child command |")
    print("|---|---|---|---|")
    for root in sorted(own):
        kids = children[root]
        listed = ", ".join(f"{name} {peak / MB:.0f}" for name, peak in sorted(kids.items())) or "–"
        print(f"| {root} | {own[root] / MB:.0f} | {listed} | {(own[root] + sum(kids.values())) / MB:.0f} |")


if __name__ == "__main__":
    main()
