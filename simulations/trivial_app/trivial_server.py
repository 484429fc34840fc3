"""Trivial ServerApp: Flower's FedAvg over the head, no evaluation; round times go to Flower's log."""

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from trivial_head import Head, state

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    c = context.run_config
    strategy = FedAvg(
        fraction_train=float(c["fraction-train"]),
        fraction_evaluate=0.0,
        min_train_nodes=1,
        min_available_nodes=int(c["num-clients"]),
    )
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(state(Head())),
        num_rounds=int(c["num-server-rounds"]),
        train_config=ConfigRecord({}),
    )
