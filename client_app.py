"""Flower ClientApp: one subject personalizes v() on its own unlabeled videos.

Wiring only: the work is done by `fedfer.federation.client.SubjectClient`, which knows nothing of
Flower. Each message returns v()'s arrays and counts; features, pseudo labels and predictions stay
here. Every reply passes `fedfer.federation.audit.audit_mod` (nothing beyond the protocol leaves) and,
with differential privacy on, Flower's clipping (`fedfer.federation.privacy.dp_clipping_mod`).
"""

from pathlib import Path

from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedfer.data.subject import read_subjects_file
from fedfer.federation.adapt_f import adapt_round
from fedfer.federation.audit import audit_mod
from fedfer.federation.client import SubjectClient, threads_for_client
from fedfer.federation.codec import decode_record, encode_record, layout_from_config
from fedfer.federation.faults import client_type, fault_mod
from fedfer.federation.group import train_crowd_group
from fedfer.federation.payload import split_payload
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
    NUM_LABELLED,
    PARTITION_ID,
    SERVER_ROUND,
    SUBJECTS,
    TRAIN_LOSS,
)
from fedfer.model.checkpoint import load_head
from fedfer.runconfig import ADAPT_F_PHASE, FederationConfig
from fedfer.synth.crowd import CrowdModel, subjects_of_node

app = ClientApp()


def subject_dir(context: Context, config: FederationConfig) -> tuple[str, int]:
    """(the subject's directory, its partition): `data-dir` in the node config (deployment), else its partition's."""
    partition = int(context.node_config.get(PARTITION_ID, 0))
    return str(context.node_config.get(NODE_DATA_DIR) or read_subjects_file(config.subjects_file)[partition]), partition


def subject_client(context: Context) -> tuple[SubjectClient, FederationConfig, int]:
    """The subject this node serves, ready to personalize."""
    threads_for_client()
    config = FederationConfig.from_run_config(context.run_config)
    data_dir, partition = subject_dir(context, config)
    ifer = context.node_config.get(NODE_IFER_CHECKPOINT) or config.ifer_checkpoint
    client = client_type(config.faults, partition)(
        data_dir,
        str(ifer),
        config.personalize,
        context.run_id,
        config.batchnorm,
        teacher=config.teacher,
        protocol=config.protocol,
    )
    return client, config, partition


def train_crowd(msg: Message, context: Context, config: FederationConfig) -> Message:
    """A crowd node: its subjects are drawn now, each personalizes, one reply carries their partial average."""
    threads_for_client()
    partition = int(context.node_config.get(PARTITION_ID, 0))
    crowd = CrowdModel.load(config.crowd.model)
    g, _ = load_head(config.ifer_checkpoint, stage="ifer", classes=crowd.classes)
    indices = subjects_of_node(partition, config.crowd.subjects_per_node, config.crowd.size)
    layout = layout_from_config(msg.content[CONFIG])
    global_state = decode_record(msg.content[ARRAYS], layout)
    group = train_crowd_group(global_state, indices, crowd, config.crowd.seed, g, config.personalize, config.batchnorm)
    metrics = {
        NUM_EXAMPLES: group.weight,
        PARTITION_ID: partition,
        TRAIN_LOSS: group.mean_loss,
        SUBJECTS: group.subjects,
    }
    return Message(
        RecordDict(
            {
                ARRAYS: encode_record(group.state, config.codec_up, packed=layout is not None),
                METRICS: MetricRecord(metrics),
            }
        ),
        reply_to=msg,
    )


def train_adapt_f(msg: Message, context: Context, config: FederationConfig) -> Message:
    """Phase adapt-f: the subject trains f()'s last blocks on its own face crops; they and a count go back."""
    threads_for_client()
    data_dir, partition = subject_dir(context, config)
    server_round = int(msg.content[CONFIG][SERVER_ROUND])
    layout = layout_from_config(msg.content[CONFIG])
    seed = config.personalize.seed + partition + server_round * config.num_clients
    state, crops, loss = adapt_round(Path(data_dir), decode_record(msg.content[ARRAYS], layout), config.adapt, seed)
    metrics = {NUM_EXAMPLES: crops, PARTITION_ID: partition, TRAIN_LOSS: loss}
    arrays = encode_record(state, config.codec_up, packed=layout is not None)
    return Message(RecordDict({ARRAYS: arrays, METRICS: MetricRecord(metrics)}), reply_to=msg)


def label_metrics(client: SubjectClient, global_state: dict) -> dict:
    """The subject's label-derived counts (studies with `client-eval` on): its personalized v() and its
    pseudo labels scored on its labelled clips, flattened K×K."""
    result = client.evaluate(global_state)
    return {
        NUM_LABELLED: result["num-labelled"],
        CM_PERSONAL: result["personal"].ravel().tolist(),
        CM_PSEUDO: result["pseudo"].ravel().tolist(),
    }


# The audit is outermost: it sees the reply as it leaves. The fault mod changes nothing unless the run
# config injects faults (tests, studies).
@app.train(mods=[audit_mod, dp_clipping_mod, fault_mod])
def train(msg: Message, context: Context) -> Message:
    config = FederationConfig.from_run_config(context.run_config)
    if config.crowd.enabled:
        return train_crowd(msg, context, config)
    if config.phase == ADAPT_F_PHASE:
        return train_adapt_f(msg, context, config)
    client, config, partition = subject_client(context)
    server_round = int(msg.content[CONFIG][SERVER_ROUND])
    layout = layout_from_config(msg.content[CONFIG])  # None: one array per tensor
    # g() and f() of a wider payload are not trained here: they go back as they came (see payload.py).
    global_state, extras = split_payload(decode_record(msg.content[ARRAYS], layout))
    state, selected, loss = client.personalize_round(
        global_state, server_round, seed=config.personalize.seed + partition
    )
    metrics = {NUM_EXAMPLES: selected, PARTITION_ID: partition, TRAIN_LOSS: loss}
    if config.client_eval and config.scores_in_train:
        metrics |= label_metrics(client, global_state)
    arrays = encode_record({**state, **extras}, config.codec_up, packed=layout is not None)
    return Message(RecordDict({ARRAYS: arrays, METRICS: MetricRecord(metrics)}), reply_to=msg)


@app.evaluate(mods=[audit_mod])
def evaluate(msg: Message, context: Context) -> Message:
    client, config, partition = subject_client(context)
    if not config.client_eval:  # label-derived counts leave only in studies that ask for them
        metrics = MetricRecord({NUM_EXAMPLES: 0, PARTITION_ID: partition})
        return Message(RecordDict({METRICS: metrics}), reply_to=msg)
    layout = layout_from_config(msg.content[CONFIG])
    counts = label_metrics(client, split_payload(decode_record(msg.content[ARRAYS], layout))[0])
    metrics = MetricRecord({NUM_EXAMPLES: counts.pop(NUM_LABELLED), PARTITION_ID: partition, **counts})
    return Message(RecordDict({METRICS: metrics}), reply_to=msg)
