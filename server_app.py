"""Flower ServerApp: FedAvg over v() only, starting from the central model.

Wiring only. Each round is logged by `fedfer.strategy.VHeadFedAvg` (bytes per client, seconds,
client evaluations) and the central v() is evaluated and checkpointed after every round.
"""

from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from fedfer.checkpoint import HeadCard, load_head, save_head
from fedfer.client import read_subjects_file
from fedfer.config import FederationConfig
from fedfer.evaluation import evaluate_subjects
from fedfer.exchange import load_v_state, v_state
from fedfer.models import VFERHead
from fedfer.io import atomic_write_json
from fedfer.strategy import VHeadFedAvg
from fedfer.subject import load_subject

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = FederationConfig.from_run_config(context.run_config)
    out = Path(config.run_dir) / "server"
    central, card = load_head(Path(config.central_checkpoint), stage="vfer")

    subjects = [load_subject(d) for d in read_subjects_file(Path(config.subjects_file))] if config.central_eval and config.subjects_file else []

    def after_round(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Checkpoint the central v() of this round and, where labelled subjects are known, score it."""
        v = load_v_state(VFERHead(len(card.classes)), arrays.to_torch_state_dict()).eval()
        save_head(out / f"v_round_{server_round}.pt", v, HeadCard(stage="vfer", classes=card.classes, backbone_id=card.backbone_id, config={"round": server_round}))
        if not subjects:
            return None
        result = evaluate_subjects(v, subjects)
        atomic_write_json(out / f"central_round_{server_round}.json", result)
        return MetricRecord({"macro-f1": result["overall"]["macro_f1"], "micro-f1": result["overall"]["micro_f1"]})

    strategy = VHeadFedAvg(
        log_path=out / "rounds.json",
        v_keys=v_state(central).keys(),
        fraction_train=config.fraction_train,
        fraction_evaluate=1.0,
        min_train_nodes=1,
        min_evaluate_nodes=1,
        min_available_nodes=config.num_clients,
    )
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(v_state(central)),
        num_rounds=config.num_server_rounds,
        train_config=ConfigRecord({}),
        evaluate_fn=after_round,
    )
