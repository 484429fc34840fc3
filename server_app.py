"""Flower ServerApp: FedAvg (or one of Flower's robust rules, `aggregation`) over v() only, starting
from the central model, or from the last completed round's checkpoint when resuming (`resume-round`).

Wiring only. Every reply is checked before aggregation (`fedfer.federation.validation`). Each round
is logged by `fedfer.federation.strategy.VHeadFedAvg` (bytes per client, seconds, client replies),
the central v() is checkpointed and scored after every round, and the run's report is written when
the last round ends, so `flwr run .` alone yields the same results folder as `fedfer run`.
"""

from dataclasses import replace
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from fedfer.federation.adapt_f import AdaptRounds
from fedfer.federation.aggregation import make_strategy
from fedfer.federation.privacy import sampled_clients, with_privacy
from fedfer.federation.resume import earlier_rounds
from fedfer.federation.server import CentralRounds, feature_weights
from fedfer.flower.progress import ProgressGrid
from fedfer.runconfig import ADAPT_F_PHASE, FederationConfig
from fedfer.rundir import RunDir

app = ServerApp()


def adapt_f(grid: Grid, config: FederationConfig, run: RunDir) -> None:
    """The rounds adapting f()'s last blocks (phase adapt-f): FedAvg weighted by face crops, every reply
    checked (no norm bound: BatchNorm statistics travel with the blocks), the adapted f() written after each."""
    rounds = AdaptRounds.load(feature_weights(run), config.adapt, run)
    strategy = make_strategy(
        replace(config.robust, max_update_norm=0.0),
        config.num_clients,
        log_path=run.adapt_rounds,
        v_keys=list(rounds.initial_state),
        pack=config.pack_arrays,
        fraction_train=config.fraction_train,
        fraction_evaluate=0.0,
        min_available_nodes=config.num_clients,
    )
    strategy.start(
        grid=ProgressGrid(grid),
        initial_arrays=ArrayRecord(rounds.initial_state),
        num_rounds=config.adapt.rounds,
        train_config=ConfigRecord({}),
        evaluate_fn=lambda server_round, arrays: rounds.after_round(server_round, arrays.to_torch_state_dict()),
        timeout=config.robust.round_timeout,
    )


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = FederationConfig.from_run_config(context.run_config)
    config.check_prepared()
    run = RunDir(config.run_dir)
    if config.phase == ADAPT_F_PHASE:
        adapt_f(grid, config, run)
        return
    central = CentralRounds.load(config, run)
    offset = config.resume_round  # a resumed run starts from the central v() of its last completed round
    strategy = make_strategy(
        config.robust,
        config.num_clients,
        log_path=run.rounds,
        v_keys=central.v_keys,
        codec_up=config.codec_up,
        codec_down=config.codec_down,
        round_offset=offset,
        earlier_rounds=earlier_rounds(run, offset),
        uniform=config.privacy.enabled,
        pack=config.pack_arrays,
        fraction_train=config.fraction_train,
        # Clients evaluate only in studies with labels, in their train replies or in an exchange of its own;
        # a crowd is a systems workload: no client evaluation.
        fraction_evaluate=1.0
        if config.client_eval and not config.scores_in_train and not config.crowd.enabled
        else 0.0,
        min_train_nodes=1,
        min_evaluate_nodes=1,
        min_available_nodes=config.num_clients,
    )
    strategy = with_privacy(strategy, config.privacy, sampled_clients(config.num_clients, config.fraction_train))
    strategy.start(
        grid=ProgressGrid(grid),
        initial_arrays=ArrayRecord(central.state_after(offset)),
        num_rounds=config.num_server_rounds - offset,
        train_config=ConfigRecord({}),
        evaluate_fn=lambda server_round, arrays: central.after_round(server_round + offset, arrays),
        timeout=config.robust.round_timeout,
    )
    if not config.crowd.enabled:  # the report compares subjects' evaluations, which a crowd run has none of
        from fedfer.runs.report import write_report  # scikit-learn and matplotlib: loaded when the rounds are done

        variant = {"protocol": config.protocol, "central_labels": config.central_labels}
        write_report(run.root, variant, Path(config.subjects_file))
