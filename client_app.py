"""Flower ClientApp: one subject personalizes v() on its own unlabeled videos.

Wiring only: the work is done by `fedfer.client.SubjectClient`, which knows nothing of Flower.
Each message returns v()'s arrays and counts; features, pseudo labels and predictions stay here.
"""

from pathlib import Path

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedfer.client import SubjectClient, read_subjects_file, threads_for_client
from fedfer.config import FederationConfig

app = ClientApp()


def subject_client(context: Context) -> tuple[SubjectClient, FederationConfig, int]:
    """The subject this node serves: `data-dir` in its node config (deployment), else its partition (simulation)."""
    threads_for_client()
    config = FederationConfig.from_run_config(context.run_config)
    partition = int(context.node_config.get("partition-id", 0))
    data_dir = context.node_config.get("data-dir") or read_subjects_file(Path(config.subjects_file))[partition]
    ifer = context.node_config.get("ifer-checkpoint") or config.ifer_checkpoint
    return SubjectClient(Path(str(data_dir)), Path(str(ifer)), config.personalize, run_id=context.run_id), config, partition


@app.train()
def train(msg: Message, context: Context) -> Message:
    client, config, partition = subject_client(context)
    server_round = int(msg.content["config"]["server-round"])
    state, selected, loss = client.personalize_round(msg.content["arrays"].to_torch_state_dict(), server_round, seed=config.personalize.seed + partition)
    metrics = MetricRecord({"num-examples": selected, "partition-id": partition, "train-loss": loss})
    return Message(RecordDict({"arrays": ArrayRecord(state), "metrics": metrics}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    client, _, partition = subject_client(context)
    result = client.evaluate(msg.content["arrays"].to_torch_state_dict())
    metrics = MetricRecord(
        {
            "num-examples": result["num-labelled"],
            "partition-id": partition,
            "cm-personal": result["personal"].ravel().tolist(),
            "cm-pseudo": result["pseudo"].ravel().tolist(),
        }
    )
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)
