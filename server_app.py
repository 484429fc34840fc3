"""Flower ServerApp: FedAvg over v() only, starting from the central model.

Wiring only. Each round is logged by `fedfer.federation.strategy.VHeadFedAvg` (bytes per client,
seconds, client replies), the central v() is checkpointed and scored after every round, and the
run's report is written when the last round ends, so `flwr run .` alone yields the same results
folder as `fedfer run`.
"""

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from fedfer.config import FederationConfig
from fedfer.experiment.rundir import RunDir
from fedfer.federation.privacy import sampled_clients, with_privacy
from fedfer.federation.server import CentralRounds
from fedfer.federation.strategy import VHeadFedAvg

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = FederationConfig.from_run_config(context.run_config)
    config.check_prepared()
    run = RunDir(config.run_dir)
    central = CentralRounds.load(config, run)
    strategy = VHeadFedAvg(
        log_path=run.rounds,
        v_keys=central.v_keys,
        uniform=config.privacy.enabled,
        fraction_train=config.fraction_train,
        fraction_evaluate=1.0 if config.client_eval else 0.0,  # clients evaluate only in studies with labels
        min_train_nodes=1,
        min_evaluate_nodes=1,
        min_available_nodes=config.num_clients,
    )
    strategy = with_privacy(strategy, config.privacy, sampled_clients(config.num_clients, config.fraction_train))
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(central.initial_state),
        num_rounds=config.num_server_rounds,
        train_config=ConfigRecord({}),
        evaluate_fn=central.after_round,
    )
    central.finish()
