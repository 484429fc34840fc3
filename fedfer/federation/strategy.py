"""FedAvg over v() only, with the bookkeeping a study needs: bytes, seconds, per-client evaluations.

Byte counts are measured, not estimated: every message the server sends and every reply it receives
is serialized with Flower's own protobuf serde and its size recorded per client and round. A client
whose threshold left it no pseudo-labelled video replies with weight 0; it is left out of the
average instead of dividing by zero when every client is in that state.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common.serde import message_to_proto
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fedfer.federation.protocol import ARRAYS, METRICS, NUM_EXAMPLES
from fedfer.io import atomic_write_json


def message_bytes(message: Message) -> int:
    """Size of `message` as Flower serializes it (content and metadata)."""
    return message_to_proto(message).ByteSize()


@dataclass
class RoundLog:
    """One round as the server saw it; written to `rounds.json` after every round."""

    round: int
    seconds: float = 0.0
    bytes_down: dict[str, int] = field(default_factory=dict)  # node id → bytes sent to it
    bytes_up: dict[str, int] = field(default_factory=dict)  # node id → bytes of its train reply
    clients: dict[str, dict] = field(default_factory=dict)  # node id → train and evaluate metrics
    received_keys: set[str] = field(default_factory=set)  # names of every array any client sent
    started: float = field(default=0.0, repr=False)

    def to_dict(self) -> dict:
        return {
            "round": self.round,
            "seconds": round(self.seconds, 3),
            "bytes_down": self.bytes_down,
            "bytes_up": self.bytes_up,
            "bytes_down_total": sum(self.bytes_down.values()),
            "bytes_up_total": sum(self.bytes_up.values()),
            "clients": self.clients,
            "received_arrays": sorted(self.received_keys),
        }


class VHeadFedAvg(FedAvg):
    """Flower's FedAvg, weighted by the number of pseudo-labelled videos, recording every round."""

    def __init__(self, log_path: Path, v_keys: Iterable[str], uniform: bool = False, **kwargs) -> None:
        super().__init__(weighted_by_key=NUM_EXAMPLES, **kwargs)
        self.uniform = uniform  # every reply weighs 1, videos or none (what DP's noise calibration assumes)
        self.log_path = Path(log_path)
        self.v_keys = sorted(v_keys)  # the only arrays a reply may carry
        self.rounds: dict[int, RoundLog] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        log = self.rounds.setdefault(server_round, RoundLog(server_round, started=time.perf_counter()))
        messages = list(super().configure_train(server_round, arrays, config, grid))
        for m in messages:
            log.bytes_down[str(m.metadata.dst_node_id)] = message_bytes(m)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        log = self.rounds[server_round]
        replies = list(replies)
        useful = []
        for reply in replies:
            node = str(reply.metadata.src_node_id)
            if reply.has_error():
                log.clients.setdefault(node, {})["error"] = reply.error.reason
                continue
            log.bytes_up[node] = message_bytes(reply)
            metrics = dict(reply.content[METRICS])
            sent = sorted(reply.content[ARRAYS].keys())
            log.clients.setdefault(node, {})["train"] = metrics
            log.received_keys.update(sent)
            if sent != self.v_keys:
                log.clients[node]["error"] = (
                    f"reply carries arrays other than v(): {sorted(set(sent) ^ set(self.v_keys))[:5]}"
                )
                continue
            if self.uniform:
                reply.content[METRICS] = MetricRecord({**metrics, NUM_EXAMPLES: 1})  # the log keeps the real count
                useful.append(reply)
            elif metrics.get(NUM_EXAMPLES, 0) > 0:
                useful.append(reply)
        if not useful:
            return None, None  # nothing to average: the strategy keeps the current v()
        return super().aggregate_train(server_round, useful)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        log = self.rounds[server_round]
        for reply in replies:
            client = log.clients.setdefault(str(reply.metadata.src_node_id), {})
            if reply.has_error():
                client.setdefault("error", reply.error.reason)
            else:
                client["evaluate"] = dict(reply.content[METRICS])
        log.seconds = time.perf_counter() - log.started
        self.write_log()
        return None

    def write_log(self) -> None:
        atomic_write_json(self.log_path, [r.to_dict() for r in sorted(self.rounds.values(), key=lambda r: r.round)])
