"""FedAvg over v() only, with the bookkeeping a study needs: bytes, seconds, per-client evaluations.

Byte counts are measured, not estimated: every message the server sends and every reply it receives
is serialized with Flower's own protobuf serde and its size recorded per client and round. A client
whose threshold left it no pseudo-labelled video replies with weight 0; it is left out of the
average instead of dividing by zero when every client is in that state.

Codecs (`fedfer.federation.codec`): what the server sends is written with `codec_down`; every reply
is decoded to float32 before FedAvg sees it (whatever the client's codec), and the dtypes that
arrived are logged per round, so a run shows what really travelled. Evaluate messages carry v()
only, whatever the payload scope. With `pack`, each message carries its tensors as one array and its
config names them (`fedfer.federation.codec.pack`); a reply is unpacked with the layout sent.

With `scores_in_train`, the clients' label-derived counts arrive in their train replies: the strategy
files them as that round's evaluation, exactly where a separate evaluate exchange would have put them.

Every reply is checked before it is averaged (`fedfer.federation.validation`): a refused one, a
client that raised and one that missed the round's timeout are recorded with their reason, and a
round left with fewer than `min-replies` useful replies stops the run. A resumed run numbers its
rounds from where the interrupted one stopped (`round_offset`) and keeps its earlier rounds' log.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common.serde import message_to_proto
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.strategy_utils import sample_nodes

from fedfer.federation.codec import (
    Layout,
    decode_record,
    dtype_counts,
    encode_record,
    layout_config,
    layout_of,
)
from fedfer.federation.payload import split_payload
from fedfer.federation.protocol import (
    ARRAYS,
    METRICS,
    NUM_EXAMPLES,
    NUM_LABELLED,
    PARTITION_ID,
    SUBJECTS,
    TRAIN_LABEL_METRICS,
)
from fedfer.federation.validation import check_update, error_reason
from fedfer.flower.progress import log_round
from fedfer.io import atomic_write_json
from fedfer.runconfig import RobustConfig


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
    received_keys: set[str] = field(default_factory=set)  # names of every array any client sent (decoded)
    received_dtypes: Counter[str] = field(default_factory=Counter)  # dtype → arrays received in that dtype
    stopped: str = ""  # why the run stopped in this round (too few useful replies); empty when it went on
    started: float = field(default=0.0, repr=False)

    @property
    def device_bytes_up(self) -> int:
        """What the subjects' own devices would have sent: a crowd node's reply stands for SUBJECTS
        replies of the same size (one v() state and the same counts each)."""
        return sum(b * int(self.clients.get(n, {}).get("train", {}).get(SUBJECTS, 1)) for n, b in self.bytes_up.items())

    def to_dict(self) -> dict:
        return {
            "round": self.round,
            "seconds": round(self.seconds, 3),
            "bytes_down": self.bytes_down,
            "bytes_up": self.bytes_up,
            "bytes_down_total": sum(self.bytes_down.values()),
            "bytes_up_total": sum(self.bytes_up.values()),
            "device_bytes_up_total": self.device_bytes_up,
            "clients": self.clients,
            "received_arrays": sorted(self.received_keys),
            "received_dtypes": dict(sorted(self.received_dtypes.items())),
            **({"stopped": self.stopped} if self.stopped else {}),
        }


def split_scores(metrics: dict) -> dict[str, dict]:
    """A train reply's metrics as the round log files them: 'train', and 'evaluate' when the reply also
    carries the subject's label-derived counts (`scores-in-train`), in an evaluate reply's own terms."""
    train = {k: v for k, v in metrics.items() if k not in TRAIN_LABEL_METRICS}
    scores = {k: v for k, v in metrics.items() if k in TRAIN_LABEL_METRICS}
    if not scores:
        return {"train": train}
    evaluation = {NUM_EXAMPLES: scores.pop(NUM_LABELLED, 0), PARTITION_ID: train.get(PARTITION_ID, -1), **scores}
    return {"train": train, "evaluate": evaluation}


class VHeadFedAvg(FedAvg):
    """Flower's FedAvg, weighted by the number of pseudo-labelled videos, recording every round."""

    def __init__(
        self,
        log_path: Path,
        v_keys: Iterable[str],
        codec_up: str = "float32",
        codec_down: str = "float32",
        robust: RobustConfig | None = None,
        round_offset: int = 0,
        earlier_rounds: Iterable[dict] = (),
        uniform: bool = False,
        pack: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(weighted_by_key=NUM_EXAMPLES, **kwargs)
        self.pack = pack  # one array per message, its layout in the message's config
        self.layout: Layout | None = None  # of the packed train messages this round (their replies come back so)
        self.uniform = uniform  # every reply weighs 1, videos or none (what DP's noise calibration assumes)
        self.log_path = Path(log_path)
        self.v_keys = sorted(v_keys)  # the only arrays a reply may carry (v(), and g()/f() in wider payloads)
        self.codec_up = codec_up  # what the clients were told to send; replies are decoded by their dtypes
        self.codec_down = codec_down
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
        self.global_state = {k: a.numpy() for k, a in arrays.items()}  # float32: updates are checked against it
        encoded, config = self.encode(arrays, config)
        self.layout = layout_of(self.global_state) if self.pack else None  # what the config just named
        # Flower's FedAvg sizes its sample from the nodes connected at this instant and only then waits
        # for `min_available_nodes`: a SuperNode restarting between rounds would shrink the sample and
        # leave a random live node out. Waiting first (Flower's own wait, sampling nothing) keeps all in.
        sample_nodes(grid, self.min_available_nodes, 0)
        messages = list(super().configure_train(server_round, encoded, config, grid))
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
            log.received_dtypes.update(dtype_counts(reply.content[ARRAYS]))
            try:
                decoded = decode_record(reply.content[ARRAYS], self.layout)
            except ValueError as err:
                log.clients.setdefault(node, {})["error"] = str(err)
                continue
            reply.content[ARRAYS] = ArrayRecord(decoded)  # FedAvg averages float32, never the codes
            sent = sorted(decoded)
            filed = split_scores(metrics)
            log.clients.setdefault(node, {}).update(filed)
            metrics = filed["train"]
            reply.content[METRICS] = MetricRecord(metrics)  # FedAvg aggregates the training counts only
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
            if self.uniform:
                reply.content[METRICS] = MetricRecord({**metrics, NUM_EXAMPLES: 1})  # the log keeps the real count
                useful.append(reply)
            elif metrics.get(NUM_EXAMPLES, 0) > 0:
                useful.append(reply)
        trained = [c["train"] for c in log.clients.values() if "train" in c and "error" not in c]
        subjects = sum(int(t.get(SUBJECTS, 1)) for t in trained)
        seconds = time.perf_counter() - log.started
        log_round(server_round, len(trained), len(log.bytes_down), subjects, seconds, log.to_dict())
        if accepted < self.robust.min_replies:
            log.stopped = (
                f"round {server_round}: {accepted} accepted replies of {len(log.bytes_down)} sent, fewer than "
                f"min-replies = {self.robust.min_replies}; the failures are in {self.log_path}"
            )
            self.write_log()
            raise RuntimeError(f"the federation stopped: {log.stopped}")
        if not useful:
            return None, None  # nothing to average: the strategy keeps the current v()
        # Replies arrive in whatever order the nodes finish; a float sum depends on its order, so the
        # average is taken in subject order and a run gives the same v() however its replies raced.
        useful.sort(key=lambda r: (int(r.content[METRICS].get(PARTITION_ID, -1)), r.metadata.src_node_id))
        return super().aggregate_train(server_round, useful)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Clients score v() only: the payload's extras stay out of evaluate messages."""
        encoded, config = self.encode(ArrayRecord(split_payload(arrays.to_torch_state_dict())[0]), config)
        return super().configure_evaluate(server_round + self.round_offset, encoded, config, grid)

    def encode(self, arrays: ArrayRecord, config: ConfigRecord) -> tuple[ArrayRecord, ConfigRecord]:
        """`arrays` written with the downlink codec, packed or not, and `config` with the layout if packed."""
        state = arrays.to_torch_state_dict()
        if self.pack:
            config = ConfigRecord({**config, **layout_config(layout_of(state))})
        return encode_record(state, self.codec_down, packed=self.pack), config

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
