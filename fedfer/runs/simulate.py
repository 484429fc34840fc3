"""`fedfer run`: the whole study as a Flower simulation, one simulated SuperNode per test subject.

The simulation runs through Flower's real runtime: a SuperLink in simulation mode (Ray backend)
started by fedfer on free loopback ports, and `flwr run` of this repository's apps against it. The
deployment launcher (`fedfer.runs.deployment`) shares every other step (`fedfer.runs.study`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fedfer.data.subject import read_subjects_file
from fedfer.flower.runtime import (
    APP_DIR,
    ProcessGroup,
    flower_env,
    free_port,
    stream_flower,
    superlink_command,
    wait_for_superlink,
    write_connection,
    write_run_config,
)
from fedfer.runconfig import FederationConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions
from fedfer.runs.study import run_study

SIMULATION_CONNECTION = "fedfer-sim"


def simulate_prepared(
    run_dir: Path,
    values: dict[str, Any],
    *,
    client_cpus: int = 1,
    verbose: bool = False,
    num_nodes: int | None = None,
    ray_address: str | None = None,
    app_dir: Path = APP_DIR,
) -> dict[str, Any]:
    """Run a prepared run (subjects, checkpoints, run-config `values`) as a Flower simulation.

    A SuperLink in simulation mode on free loopback ports, `num_nodes` simulated SuperNodes (default:
    one per subject of the subjects file); stopped by PID whatever happens. With `ray_address`
    (`host:port` of a running cluster's head, `ray start --head`), Flower's Ray backend joins that
    cluster instead of starting Ray on this machine. `app_dir`: the Flower app (benchmarks run their
    own). Returns the wall time of `flwr run`.
    """
    run = RunDir(run_dir)
    num_clients = num_nodes or len(read_subjects_file(FederationConfig.from_run_config(values).subjects_file))
    env = flower_env(run.flwr_home) | ({"RAY_ADDRESS": ray_address} if ray_address else {})
    port = free_port()
    with ProcessGroup(run.logs) as processes:
        command = superlink_command(
            host="127.0.0.1", port=port, database=str(run.flwr_home / "state.db"), credentials=None, simulation=True
        )
        superlink = processes.start("superlink", command, env)
        wait_for_superlink(port, superlink, run.logs / "superlink.log")
        options = {"num-supernodes": num_clients, "backend.client-resources.num-cpus": client_cpus}
        write_connection(run.flwr_home, SIMULATION_CONNECTION, f"127.0.0.1:{port}", insecure=True, options=options)
        config_file = write_run_config(run.run_config, values)
        started = time.monotonic()
        stream_flower(app_dir, SIMULATION_CONNECTION, config_file, env, run.flower_log, verbose)
    return {"flower_seconds": time.monotonic() - started}


def simulate(options: RunOptions) -> Path:
    """The main job: prepare, run the Flower simulation, write the report. Returns the run directory."""

    def federate(run_dir: Path, values: dict[str, Any]) -> dict[str, Any]:
        return simulate_prepared(
            run_dir, values, client_cpus=options.client_cpus, verbose=options.verbose, ray_address=options.ray_address
        )

    prepared, _ = run_study(options, federate, "simulation")
    return prepared.run.root
