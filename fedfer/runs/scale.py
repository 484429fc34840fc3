"""A federation of a crowd (`fedfer.synth.crowd`) on Flower's simulation, from a prepared run.

The prepared run gives the central v(), g() and the subjects the crowd model is fitted to; the crowd
federation writes its own run folder (rounds, central v() per round) and no report: a crowd is a
systems workload, not a study of faces.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from fedfer.runconfig import CrowdConfig, FederationConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions
from fedfer.runs.simulate import simulate_prepared
from fedfer.runs.study import check_completed, prepare_run
from fedfer.synth.crowd import fit_crowd_from_run, nodes_for


def crowd_model_of(prepared_run: Path, out: Path) -> Path:
    """The crowd model of a prepared run's subjects, kept in the crowd run's folder `out`: fitted on
    first use, then reused (the prepared run itself is only read)."""
    path = RunDir(out).crowd_model
    if not path.is_file():
        fit_crowd_from_run(RunDir(prepared_run).subjects_file).save(path)
    return path


def crowd_values(
    prepared_run: Path, out: Path, crowd: CrowdConfig, *, rounds: int, fraction_train: float
) -> dict[str, Any]:
    """The run config of a crowd federation: the prepared run's, with the crowd, its node count and `out`."""
    run = RunDir(prepared_run)
    if not run.run_config.is_file():
        raise FileNotFoundError(f"{run.run_config} not found: prepare the run first (`fedfer prepare`)")
    base = FederationConfig.from_run_config(tomllib.loads(run.run_config.read_text()))
    return replace(
        base,
        run_dir=str(Path(out).resolve()),
        num_server_rounds=rounds,
        fraction_train=fraction_train,
        num_clients=nodes_for(crowd.size, crowd.subjects_per_node),
        central_eval=False,  # the prepared subjects are not the crowd: scoring them says nothing here
        crowd=crowd,
    ).to_run_config()


def simulate_crowd(
    prepared_run: Path,
    out: Path,
    crowd: CrowdConfig,
    *,
    rounds: int = 2,
    fraction_train: float = 1.0,
    client_cpus: int = 1,
    ray_address: str | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run a crowd federation into `out`; `crowd.model` defaults to one fitted to the prepared run's subjects.
    Returns `simulate_prepared`'s facts (the wall time of `flwr run`)."""
    if not crowd.model:
        crowd = replace(crowd, model=str(crowd_model_of(prepared_run, out).resolve()))
    values = crowd_values(prepared_run, out, crowd, rounds=rounds, fraction_train=fraction_train)
    nodes = nodes_for(crowd.size, crowd.subjects_per_node)
    return simulate_prepared(
        out, values, client_cpus=client_cpus, verbose=verbose, num_nodes=nodes, ray_address=ray_address
    )


def run_crowd(options: RunOptions) -> Path:
    """`fedfer run --crowd N`: prepare the run as usual (world, features, central models), then federate a
    crowd of `options.federation.crowd.size` subjects fitted to its test subjects. Returns the crowd run's
    folder, `<results>/<run name>-crowd<N>` (rounds, central v() per round; no report)."""
    crowd, rounds, fraction = (
        options.federation.crowd,
        options.federation.num_server_rounds,
        options.federation.fraction_train,
    )
    if crowd.size < 1 or crowd.subjects_per_node < 1:
        raise ValueError(
            f"--crowd must be >= 1 and --subjects-per-node >= 1, got {crowd.size} and {crowd.subjects_per_node}"
        )
    if options.resume:
        raise ValueError("--resume continues a run of the world's subjects, not a crowd: drop --resume or --crowd")
    prepared = prepare_run(options)
    out = options.results / f"{options.run_name}-crowd{crowd.size}"
    nodes = nodes_for(crowd.size, crowd.subjects_per_node)
    print(
        f"crowd: {crowd.size} subjects on {nodes} simulated nodes ({crowd.subjects_per_node} per node), "
        f"{rounds} rounds, fraction-train {fraction} → {out}",
        flush=True,
    )
    facts = simulate_crowd(
        prepared.run.root,
        out,
        crowd,
        rounds=rounds,
        fraction_train=fraction,
        client_cpus=options.client_cpus,
        ray_address=options.ray_address,
        verbose=options.verbose,
    )
    check_completed(RunDir(out), rounds)
    print(f"crowd: {rounds} rounds in {facts['flower_seconds']:.1f} s; rounds in {RunDir(out).rounds}")
    return out
