"""Flower's SuperNode, asking for work every `IDLE_S` seconds instead of every 3 s.

Why: a Flower 1.42 SuperNode that finds no message for it sleeps 3 s before asking the SuperLink
again, and checks for its ClientApp's reply every 0.5 s (`time.sleep(3)` and `time.sleep(0.5)` in
`flwr.supernode.start_client_internal`; no option or variable sets them). A round has two exchanges
(train, then evaluate once every reply is in), and a node that has just replied is asleep when the
next one starts: each exchange begins on average 1.5 s, at worst 3 s, late. In a 3-client lab
deployment that was 2–5 s of every round, more than the clients' own work.

This runs Flower's own `flower-supernode` command with those sleeps capped at `IDLE_S`. The price:
an idle SuperNode asks its SuperLink for messages 1 / `IDLE_S` times a second instead of once every
3 s: nothing for a lab's few nodes, too much for thousands of them (there, keep Flower's
`flower-supernode`, as the compose file does). The cap is a patch of Flower's internals
(`fedfer.flower.internals.cap_supernode_sleeps`, pinned Flower only).

    python -m fedfer.flower.quick_supernode [flower-supernode flags]
"""

from __future__ import annotations

import sys

from fedfer.flower.internals import cap_supernode_sleeps

IDLE_S = 0.25


def main() -> None:
    from flwr.supernode.cli import flower_supernode

    cap_supernode_sleeps(IDLE_S)
    sys.argv[0] = "flower-supernode"
    sys.exit(flower_supernode())


if __name__ == "__main__":
    main()
