"""Where a deployed round's seconds go, read from the timestamps of a deployment's Flower logs.

A deployment run with `FLWR_LOG_LEVEL=DEBUG` (which makes every Flower process stamp its lines)
leaves in `<run>/logs/` the ServerApp's log (`flower.log`), each SuperNode's and, in the forked
mode, each warm launcher's. Every exchange (a train or an evaluate message to every node) is cut
into what each SuperNode's log shows, averaged over nodes and exchanges of the same kind:

- notice: the ServerApp sent (configure_*) → the SuperNode pulls the message (its idle polling)
- pull: the SuperNode receives the message's arrays from the SuperLink
- to ClientApp: received → the ClientApp process loads the app (its own pull of the message from
  the SuperNode and the FAB install)
- ClientApp: loading the app, the client's work, pushing the reply to the SuperNode
- pick-up: the reply is in → the SuperNode starts sending it (its reply polling)
- push: the SuperNode sends the reply's arrays to the SuperLink
- server: the last reply is sent → the ServerApp has them all and moves on

    python simulations/deploy_timeline.py RUN_DIR           # e.g. after bench_deploy.py --timeline --out DIR
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from pathlib import Path

import numpy as np
from study_args import study_parser

STAMP = re.compile(r"^(?:\x1b\[[0-9;]*m)?[A-Z]+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})(?:\x1b\[[0-9;]*m)?:\s+(.*)$")
PROGRESS = re.compile(r"\[fedfer\]\s+\d+/\d+ replies")  # `ProgressGrid`'s lines while an exchange runs
PHASES = ("notice", "pull", "to ClientApp", "ClientApp", "pick-up", "push", "server")
NODE_EVENTS = {
    "Receiving:": "receiving",
    "Received successfully": "received",
    "Runtime.PushMessages": "reply_in",
    "Sending:": "sending",
    "Sent successfully": "sent",
}


def stamped_lines(path: Path) -> list[tuple[float, str]]:
    """(seconds since the epoch, message) of every timestamped line of a Flower log."""
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if match := STAMP.match(raw.strip()):
            moment = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            lines.append((moment, match.group(2)))
    return lines


def exchanges(flower_log: Path) -> list[tuple[str, float, float]]:
    """(kind, start, end) of each exchange: configure_* to the ServerApp's next line (progress lines aside)."""
    lines = [(moment, text) for moment, text in stamped_lines(flower_log) if not PROGRESS.search(text)]
    found = []
    for i, (moment, text) in enumerate(lines):
        if text.startswith(("configure_train:", "configure_evaluate:")) and i + 1 < len(lines):
            kind = "train" if "train" in text.split(":")[0] else "evaluate"
            found.append((kind, moment, lines[i + 1][0]))
    return found


def node_events(logs: Path, node: int) -> list[dict[str, float]]:
    """Per message the node handled, in order: the moments of its events (NODE_EVENTS, and "loading":
    its ClientApp loading the app, from the warm launcher's log or, in Flower's mode, the node's)."""
    supernode = logs / f"supernode-{node}.log"
    messages: list[dict[str, float]] = []
    for moment, text in stamped_lines(supernode):
        event = next((name for prefix, name in NODE_EVENTS.items() if text.startswith(prefix)), None)
        if event == "receiving":
            messages.append({"receiving": moment})
        elif event and messages and event not in messages[-1]:
            messages[-1][event] = moment
    launcher = logs / f"clientapps-{node}.log"
    source = launcher if launcher.is_file() else supernode
    loads = [moment for moment, text in stamped_lines(source) if text.startswith("Loading ClientApp")]
    for message, moment in zip(messages, loads, strict=False):
        message["loading"] = moment
    return messages


def timeline(run_dir: Path) -> dict[str, dict[str, float]]:
    """Mean seconds of each phase (PHASES) and of the whole exchange, per kind of exchange."""
    logs = run_dir / "logs"
    rounds = exchanges(logs / "flower.log")
    nodes = sorted(int(p.stem.split("-")[1]) for p in logs.glob("supernode-*.log"))
    per_node = [node_events(logs, node) for node in nodes]
    phases: dict[str, dict[str, list[float]]] = {}
    for index, (kind, start, end) in enumerate(rounds):
        events = [messages[index] for messages in per_node if index < len(messages)]
        spans = phases.setdefault(kind, {phase: [] for phase in (*PHASES, "exchange")})
        for e in events:
            marks = [start, *(e.get(k) for k in ("receiving", "received", "loading", "reply_in", "sending", "sent"))]
            for phase, (a, b) in zip(PHASES, itertools.pairwise(marks), strict=False):
                if a is not None and b is not None:
                    spans[phase].append(b - a)
        if sent := [e["sent"] for e in events if "sent" in e]:
            spans["server"].append(end - max(sent))
        spans["exchange"].append(end - start)
    return {kind: {k: float(np.mean(v)) for k, v in spans.items() if v} for kind, spans in phases.items()}


def markdown(table: dict[str, dict[str, float]]) -> str:
    header = ["| exchange | " + " | ".join(PHASES) + " | whole exchange |", "|---" * (len(PHASES) + 2) + "|"]
    rows = [
        f"| {kind} | "
        + " | ".join(f"{spans.get(p, float('nan')):.2f}" for p in PHASES)
        + f" | {spans['exchange']:.2f} |"
        for kind, spans in table.items()
    ]
    return "\n".join(header + rows)


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__)
    parser.add_argument(
        "run_dir", type=Path, help="a deployment's run folder (its logs/ written with FLWR_LOG_LEVEL=DEBUG)"
    )
    print(markdown(timeline(parser.parse_args(argv).run_dir)))


if __name__ == "__main__":
    main()
