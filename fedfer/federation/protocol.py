"""What travels between a client and the server: v()'s weights and a few counts, nothing else.

Every name a message carries is defined here, once; the apps, the strategy and the report import
them. A train reply holds the record ARRAYS (v()'s state) and METRICS (NUM_EXAMPLES = the number
of pseudo-labelled videos the subject trained on, PARTITION_ID, TRAIN_LOSS); in studies with labels
the confusion-matrix counts of the subject's labelled clips ride in it too (`scores-in-train`) or
leave in an evaluate reply, which holds METRICS only. v()'s state travels as one packed array per
message (`pack-arrays`, `fedfer.federation.codec`) or one array per tensor.

v()'s state is its 208,838 parameters plus its BatchNorm running statistics (2,944 values): the
statistics must travel too, because a personalized v() shifts them and an average of weights with
stale statistics would be a different network. `num_batches_tracked` stays home: it is a counter,
not a weight, and averaging it would turn it into a float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from fedfer.model.heads import VFERHead
from fedfer.runconfig import FederationConfig
from fedfer.settings import key_of

LOCAL_ONLY_SUFFIX = "num_batches_tracked"

# Records of a message's RecordDict.
ARRAYS = "arrays"
METRICS = "metrics"
CONFIG = "config"
# Set by Flower's strategies in every train/evaluate config.
SERVER_ROUND = "server-round"
# Metrics a client sends.
NUM_EXAMPLES = "num-examples"  # FedAvg's weight: pseudo-labelled videos trained on (train), labelled clips (evaluate)
PARTITION_ID = "partition-id"  # which subject of the run's subjects file the node serves
TRAIN_LOSS = "train-loss"
SUBJECTS = "subjects"  # how many subjects a node's reply stands for (a crowd node's partial average; else 1)
CM_PERSONAL = "cm-personal"  # K×K counts (flattened): the personalized v() on the subject's labelled clips
CM_PSEUDO = "cm-pseudo"  # K×K counts: true label × pseudo label of the selected clips
NUM_LABELLED = "num-labelled"  # a train reply's count of the labelled clips its cm-personal scored (scores-in-train)
# Everything a client may send (`fedfer.federation.audit` checks every reply against these): a train
# reply is ARRAYS (exactly the arrays it received, same shapes) and these scalars; an evaluate reply is
# METRICS only, with the label-derived matrices only when the run config's `client-eval` is on.
TRAIN_METRICS = (NUM_EXAMPLES, PARTITION_ID, TRAIN_LOSS, SUBJECTS)
EVALUATE_METRICS = (NUM_EXAMPLES, PARTITION_ID)
LABEL_METRICS = (CM_PERSONAL, CM_PSEUDO)  # K×K each
# With client-eval and scores-in-train on, a train reply carries the label-derived counts too, and how
# many labelled clips they count (one exchange per round).
SCORE_COUNT_METRICS = (NUM_LABELLED,)
TRAIN_LABEL_METRICS = SCORE_COUNT_METRICS + LABEL_METRICS
# Metrics of the server's own evaluation of the central v().
MACRO_F1 = "macro-f1"
MICRO_F1 = "micro-f1"
# Wider payloads (fedfer.federation.payload): g()'s and f()'s tensors travel under these prefixes,
# v()'s without one. Scopes: "v" (the method), "g+v", "f+g+v" (the whole network).
G_PREFIX = "g/"
F_PREFIX = "f/"
# The 8-bit codec (fedfer.federation.codec): each float tensor travels as uint8 codes q, and this one
# extra (N, 2) float32 array holds, for the N coded arrays in sorted name order, the offset and the
# step of x = offset + step · q.
INT8_AFFINE = "codec/int8-affine"
# Packing (`pack-arrays`, fedfer.federation.codec): the coded tensors travel as this one array, and
# the config of the message that carries it lists their names (sorted) and shapes ("64,1280").
PACKED = "packed"
PACKED_NAMES = "packed-names"
PACKED_SHAPES = "packed-shapes"
# A SuperNode's node config (deployment; simulation sets PARTITION_ID itself).
NODE_DATA_DIR = "data-dir"
NODE_IFER_CHECKPOINT = key_of(FederationConfig, "ifer_checkpoint")  # the run config's g(), per node


def v_state(v: VFERHead) -> dict[str, Tensor]:
    """The tensors of v() that are sent and averaged, in a stable order."""
    return {k: t.detach().clone() for k, t in v.state_dict().items() if not k.endswith(LOCAL_ONLY_SUFFIX)}


def load_v_state(v: VFERHead, state: Mapping[str, Tensor]) -> VFERHead:
    """Load a received state into `v`; anything other than v()'s own tensors is an error."""
    expected = set(v_state(v))
    received = set(state)
    if received != expected:
        raise ValueError(
            f"received arrays do not match v(): missing {sorted(expected - received)}, unexpected "
            f"{sorted(received - expected)}"
        )
    v.load_state_dict(dict(state), strict=False)
    return v


def weighted_mean(states: Sequence[Mapping[str, Tensor]], weights: Sequence[float]) -> dict[str, Tensor]:
    """FedAvg of several v() states: Σ w_i · state_i / Σ w_i, computed in float64."""
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("weighted_mean needs a positive total weight")
    keys = list(states[0])
    return {
        k: sum(torch.as_tensor(s[k], dtype=torch.float64) * (w / total) for s, w in zip(states, weights)).to(
            torch.float32
        )
        for k in keys
    }
