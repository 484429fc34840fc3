"""FedAvg over v() only, with the bookkeeping a study needs: bytes, seconds, per-client evaluations.

Byte counts are measured, not estimated: every message the server sends and every reply it receives
is serialized with Flower's own protobuf serde and its size recorded per client and round. A client
whose threshold left it no pseudo-labelled video replies with weight 0; it is left out of the
average instead of dividing by zero when every client is in that state.

Every reply is checked before it is averaged (`fedfer.federation.validation`): a refused one, a
client that raised and one that missed the round's timeout are recorded with their reason, and a
round left with fewer than `min-replies` useful replies stops the run. A resumed run numbers its
rounds from where the interrupted one stopped (`round_offset`) and keeps its earlier rounds' log.
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

from fedfer.config import RobustConfig
from fedfer.federation.protocol import ARRAYS, METRICS, NUM_EXAMPLES
from fedfer.federation.validation import check_update, error_reason
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
    stopped: str = ""  # why the run stopped in this round (too few useful replies); empty when it went on
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
            **({"stopped": self.stopped} if self.stopped else {}),
        }


class VHeadFedAvg(FedAvg):
    """Flower's FedAvg, weighted by the number of pseudo-labelled videos, recording every round."""

    def __init__(
        self,
        log_path: Path,
        v_keys: Iterable[str],
        robust: RobustConfig | None = None,
        round_offset: int = 0,
        earlier_rounds: Iterable[dict] = (),
        **kwargs,
    ) -> None:
        super().__init__(weighted_by_key=NUM_EXAMPLES, **kwargs)
        self.log_path = Path(log_path)
        self.v_keys = sorted(v_keys)  # the only arrays a reply may carry
        self.robust = robust or RobustConfig()
        self.round_offset = round_offset  # rounds an interrupted run completed before this one resumed it
        self.earlier_rounds = [r for r in earlier_rounds if r["round"] <= round_offset]  # their log entries
        self.rounds: dict[int, RoundLog] = {}
        self.global_state: dict = {}  # array name → numpy array of the v() sent this round

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        server_round += self.round_offset
        log = self.rounds.setdefault(server_round, RoundLog(server_round, started=time.perf_counter()))
        self.global_state = {k: a.numpy() for k, a in arrays.items()}
        messages = list(super().configure_train(server_round, arrays, config, grid))
        for m in messages:
            log.bytes_down[str(m.metadata.dst_node_id)] = message_bytes(m)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        server_round += self.round_offset
        log = self.rounds[server_round]
        replies = list(replies)
        useful, accepted = [], 0
        for node in set(log.bytes_down) - {str(r.metadata.src_node_id) for r in replies}:
            log.clients.setdefault(node, {})["error"] = f"no reply within round-timeout {self.robust.round_timeout:g} s"
        for reply in replies:
            node = str(reply.metadata.src_node_id)
            if reply.has_error():
                log.clients.setdefault(node, {})["error"] = error_reason(reply.error.reason)
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
            verdict = check_update(
                {k: a.numpy() for k, a in reply.content[ARRAYS].items()},
                self.global_state,
                self.robust.max_update_norm if self.robust.validate else 0.0,
            )
            if verdict.norm is not None:
                log.clients[node]["update_norm"] = verdict.norm
            if verdict.reason is not None and self.robust.validate:
                log.clients[node]["error"] = f"update refused: {verdict.reason}"
                continue
            accepted += 1
            if metrics.get(NUM_EXAMPLES, 0) > 0:
                useful.append(reply)
        if accepted < self.robust.min_replies:
            log.stopped = (
                f"round {server_round}: {accepted} accepted replies of {len(log.bytes_down)} sent, fewer than "
                f"min-replies = {self.robust.min_replies}; the failures are in {self.log_path}"
            )
            self.write_log()
            raise RuntimeError(f"the federation stopped: {log.stopped}")
        if not useful:
            return None, None  # nothing to average: the strategy keeps the current v()
        return super().aggregate_train(server_round, useful)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return super().configure_evaluate(server_round + self.round_offset, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        server_round += self.round_offset
        log = self.rounds[server_round]
        for reply in replies:
            client = log.clients.setdefault(str(reply.metadata.src_node_id), {})
            if reply.has_error():
                client.setdefault("error", error_reason(reply.error.reason))
            else:
                client["evaluate"] = dict(reply.content[METRICS])
        log.seconds = time.perf_counter() - log.started
        self.write_log()
        return None

    def write_log(self) -> None:
        rounds = [r.to_dict() for r in sorted(self.rounds.values(), key=lambda r: r.round)]
        atomic_write_json(self.log_path, self.earlier_rounds + rounds)
