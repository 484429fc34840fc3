"""Flower ClientApp: one subject personalizes v() on its own unlabeled videos.

Wiring only: the work is done by `fedfer.federation.client.SubjectClient`, which knows nothing of
Flower. Each message returns v()'s arrays and counts; features, pseudo labels and predictions stay
here. Every reply passes `fedfer.federation.audit.audit_mod` (nothing beyond the protocol leaves) and,
with differential privacy on, Flower's clipping (`fedfer.federation.privacy.dp_clipping_mod`).
"""

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedfer.config import FederationConfig
from fedfer.federation.audit import audit_mod
from fedfer.federation.client import SubjectClient, threads_for_client
from fedfer.federation.privacy import dp_clipping_mod
from fedfer.federation.protocol import (
    ARRAYS,
    CM_PERSONAL,
    CM_PSEUDO,
    CONFIG,
    METRICS,
    NODE_DATA_DIR,
    NODE_IFER_CHECKPOINT,
    NUM_EXAMPLES,
    PARTITION_ID,
    SERVER_ROUND,
    TRAIN_LOSS,
)
from fedfer.federation.subject import read_subjects_file

app = ClientApp()


def subject_client(context: Context) -> tuple[SubjectClient, FederationConfig, int]:
    """The subject this node serves: `data-dir` in its node config (deployment), else its partition (simulation)."""
    threads_for_client()
    config = FederationConfig.from_run_config(context.run_config)
    partition = int(context.node_config.get(PARTITION_ID, 0))
    data_dir = context.node_config.get(NODE_DATA_DIR) or read_subjects_file(config.subjects_file)[partition]
    ifer = context.node_config.get(NODE_IFER_CHECKPOINT) or config.ifer_checkpoint
    client = SubjectClient(
        str(data_dir), str(ifer), config.personalize, context.run_id, config.batchnorm, teacher=config.teacher
    )
    return client, config, partition


@app.train(mods=[audit_mod, dp_clipping_mod])  # the audit is outermost: it sees the reply as it leaves
def train(msg: Message, context: Context) -> Message:
    client, config, partition = subject_client(context)
    server_round = int(msg.content[CONFIG][SERVER_ROUND])
    global_state = msg.content[ARRAYS].to_torch_state_dict()
    state, selected, loss = client.personalize_round(
        global_state, server_round, seed=config.personalize.seed + partition
    )
    metrics = MetricRecord({NUM_EXAMPLES: selected, PARTITION_ID: partition, TRAIN_LOSS: loss})
    return Message(RecordDict({ARRAYS: ArrayRecord(state), METRICS: metrics}), reply_to=msg)


@app.evaluate(mods=[audit_mod])
def evaluate(msg: Message, context: Context) -> Message:
    client, config, partition = subject_client(context)
    if not config.client_eval:  # label-derived counts leave only in studies that ask for them
        metrics = MetricRecord({NUM_EXAMPLES: 0, PARTITION_ID: partition})
        return Message(RecordDict({METRICS: metrics}), reply_to=msg)
    result = client.evaluate(msg.content[ARRAYS].to_torch_state_dict())
    metrics = MetricRecord(
        {
            NUM_EXAMPLES: result["num-labelled"],
            PARTITION_ID: partition,
            CM_PERSONAL: result["personal"].ravel().tolist(),
            CM_PSEUDO: result["pseudo"].ravel().tolist(),
        }
    )
    return Message(RecordDict({METRICS: metrics}), reply_to=msg)
