"""What leaves a client, checked and recorded on the client itself, as the last step before sending.

`audit_mod` wraps the ClientApp's functions (the outermost Flower mod, so it sees the reply exactly as
it goes out, after clipping). Every reply is compared with what `fedfer.federation.protocol` allows: a
train reply carries the arrays it received (same names, same shapes: one packed array when v() came
packed) and the documented scalar counts; an evaluate reply carries the documented counts; the
label-derived matrices travel only when the run config turns `client-eval` on, in the evaluate reply
or, with `scores-in-train`, in the train reply. A reply with anything else is not sent: the client
answers with an error that names what it refused. With `audit-dir` set, each reply's description
(record names, array names and shapes, metric names and sizes, serialized bytes) is written there, one
JSON file per message, so a study or a device owner can read what was sent without trusting the server.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, MessageType, MetricRecord
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.constant import ErrorCode

from fedfer.federation.codec import layout_from_config
from fedfer.federation.protocol import (
    ARRAYS,
    CONFIG,
    EVALUATE_METRICS,
    INT8_AFFINE,
    LABEL_METRICS,
    METRICS,
    SERVER_ROUND,
    TRAIN_LABEL_METRICS,
    TRAIN_METRICS,
)
from fedfer.federation.strategy import message_bytes
from fedfer.io import atomic_write_json
from fedfer.runconfig import FederationConfig


def describe(message: Message) -> dict[str, Any]:
    """Names and sizes of everything a message carries (never its values)."""
    content = message.content
    return {
        "records": {name: type(record).__name__ for name, record in content.items()},
        "arrays": {
            f"{name}/{key}": {"shape": list(array.shape), "dtype": array.dtype}
            for name, record in content.array_records.items()
            for key, array in record.items()
        },
        "metrics": {
            f"{name}/{key}": len(value) if isinstance(value, list) else 1
            for name, record in content.metric_records.items()
            for key, value in record.items()
        },
        "configs": sorted(f"{name}/{key}" for name, record in content.config_records.items() for key in record),
    }


def reply_problems(request: Message, reply: Message, config: FederationConfig) -> list[str]:
    """Everything in `reply` beyond what the protocol and the run `config` allow for `request`'s message
    type; empty if none."""
    if reply.has_error():
        return []
    kind = request.metadata.message_type
    content = reply.content
    if kind == MessageType.TRAIN:
        allowed_records, allowed_metrics = {ARRAYS: ArrayRecord, METRICS: MetricRecord}, set(TRAIN_METRICS)
        allowed_metrics |= set(TRAIN_LABEL_METRICS) if config.client_eval and config.scores_in_train else set()
    else:
        allowed_records, allowed_metrics = {METRICS: MetricRecord}, set(EVALUATE_METRICS)
        allowed_metrics |= set(LABEL_METRICS) if config.client_eval else set()
    problems = [
        f"record {name!r} ({type(record).__name__})"
        for name, record in content.items()
        if not isinstance(record, allowed_records.get(name, ()))
    ]
    problems += [f"missing record {name!r}" for name in allowed_records if name not in content]
    if ARRAYS in allowed_records and isinstance(content.get(ARRAYS), ArrayRecord):
        received = {k: list(a.shape) for k, a in request.content[ARRAYS].items()}
        sent = {k: list(a.shape) for k, a in content[ARRAYS].items()}
        config_record = request.content.get(CONFIG)
        layout = layout_from_config(config_record) if isinstance(config_record, ConfigRecord) else None
        tensors = len(layout) if layout is not None else len(received)
        # The 8-bit codec's one table of offsets and steps (a row per tensor) may travel up when the
        # downlink was float.
        problems += [
            f"array {k!r} {shape}"
            for k, shape in sent.items()
            if received.get(k) != shape and not (k == INT8_AFFINE and shape == [tensors, 2])
        ]
        problems += [f"missing array {k!r}" for k in received if k not in sent and k != INT8_AFFINE]
    metrics = content.get(METRICS)
    if isinstance(metrics, MetricRecord):
        for key, value in metrics.items():
            if key not in allowed_metrics:
                problems.append(f"metric {key!r}")
            elif key in LABEL_METRICS:
                side = math.isqrt(len(value)) if isinstance(value, list) else -1
                if side < 1 or side * side != len(value):
                    problems.append(f"metric {key!r} is not a square matrix of counts")
            elif isinstance(value, list):
                problems.append(f"metric {key!r} has {len(value)} values, not one")
    return problems


def audit_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower mod: send the reply only if it holds nothing beyond the protocol; record it if asked."""
    reply = call_next(msg, context)
    config = FederationConfig.from_run_config(context.run_config)
    problems = reply_problems(msg, reply, config)
    if config.audit_dir:
        kind = msg.metadata.message_type
        server_round = (
            msg.content[CONFIG].get(SERVER_ROUND, 0) if isinstance(msg.content.get(CONFIG), ConfigRecord) else 0
        )
        record = {
            "run": context.run_id,
            "node": context.node_id,
            "round": int(server_round),
            "type": kind,
            "error": reply.error.reason if reply.has_error() else None,
            "bytes": message_bytes(reply),
            "refused": problems,
            **({} if reply.has_error() else describe(reply)),
        }
        path = Path(config.audit_dir) / f"{context.run_id}-{context.node_id}-r{int(server_round)}-{kind}.json"
        atomic_write_json(path, record)
    if problems:
        reason = f"fedfer refused to send a {msg.metadata.message_type} reply carrying {'; '.join(problems)}"
        return Message(Error(code=ErrorCode.MOD_FAILED_PRECONDITION, reason=reason), reply_to=msg)
    return reply
