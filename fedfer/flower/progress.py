"""Progress of long runs on the terminal: replies as they arrive, and a line per round.

Flower's `Grid.send_and_receive` pushes a round's messages and waits for every reply in silence;
with thousands of clients a round lasts minutes. `ProgressGrid` is the grid the strategy is given:
it sends and pulls through the real grid's `push_messages` / `pull_messages` (every 0.5 s, with
short retries for replies still being pushed: `fedfer.flower.internals`) and logs how many
of the round's replies are in. The lines go through Flower's logger, so `flwr run --stream` carries
them and `fedfer run` echoes them (`fedfer.flower.runtime.PROGRESS_LINE`).

When a node stops reporting heartbeats (a SuperNode killed mid-round), Flower's SuperLink answers
for it with an error reply ("Node Unavailable") whose sender is the SuperLink itself; the grid gives
that reply its destination node's id, so the strategy records the failure against the node it is
about.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from logging import INFO
from typing import Any

from flwr.app import Message
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.common.logger import log
from flwr.serverapp import Grid

from fedfer.flower.internals import readdress_reply, shorten_server_pulls

PROGRESS_TAG = "[fedfer]"


class ProgressGrid:
    """The real grid with a `send_and_receive` that reports replies every `every_s` seconds."""

    def __init__(self, grid: Grid, every_s: float = 10.0, poll_s: float = 0.5) -> None:
        self._grid = grid
        self.every_s = every_s
        self.poll_s = poll_s  # Flower's own loop sleeps 3 s between pulls: a round ends up to 3 s late
        shorten_server_pulls()  # and a reply still being pushed is retried after 1, 2, 4… s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        started = time.monotonic()
        messages = list(messages)
        pending = set(self._grid.push_messages(messages))
        destination = {m.metadata.message_id: m.metadata.dst_node_id for m in messages}  # set by the push
        sent = len(pending)
        replies: list[Message] = []
        last_report = started
        while pending and (timeout is None or time.monotonic() - started < timeout):
            pulled = list(self._grid.pull_messages(pending))
            for reply in pulled:
                if reply.metadata.src_node_id == SUPERLINK_NODE_ID:  # Flower's answer for a silent node
                    readdress_reply(reply, destination[reply.metadata.reply_to_message_id])
            replies.extend(pulled)
            pending.difference_update(m.metadata.reply_to_message_id for m in pulled)
            now = time.monotonic()
            if pending and now - last_report >= self.every_s:
                log(INFO, "%s   %d/%d replies, %.0f s", PROGRESS_TAG, len(replies), sent, now - started)
                last_report = now
            if pending:
                time.sleep(self.poll_s)
        return replies


def log_round(server_round: int, replied: int, sampled: int, subjects: int, seconds: float, record: dict) -> None:
    """One line per round: replies / sampled nodes, the subjects they stand for, seconds, bytes (a
    `RoundLog.to_dict()` record)."""
    log(
        INFO,
        "%s round %d: %d/%d nodes replied (%d subjects), %.1f s, %.1f MB down, %.1f MB up (%.1f MB from devices)",
        PROGRESS_TAG,
        server_round,
        replied,
        sampled,
        subjects,
        seconds,
        record["bytes_down_total"] / 1e6,
        record["bytes_up_total"] / 1e6,
        record["device_bytes_up_total"] / 1e6,
    )
