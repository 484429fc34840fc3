"""`fedfer run`: the whole study — central stage, a Flower simulation with one SuperNode per test
subject, and the report.

The simulation runs through Flower's real runtime: a SuperLink in simulation mode (Ray backend)
started by fedfer on free loopback ports, and `flwr run` of this repository's apps against it. The
deployment launcher (`fedfer.deploy`) reuses everything here except how the SuperNodes come to be.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from fedfer.client import PERSONAL_DIR, read_subjects_file
from fedfer.config import FederationConfig, FeatureConfig, PersonalizeConfig, TrainConfig
from fedfer.flower_runtime import ProcessGroup, flower_env, flwr_run, free_port, superlink_command, wait_for_superlink, write_connection, write_run_config
from fedfer.io import atomic_write_json
from fedfer.pipeline import SYNTHETIC_PRESETS, Prepared, Task, prepare_central, prepare_world
from fedfer.subject import write_subject

log = logging.getLogger(__name__)

APP_DIR = Path(__file__).resolve().parents[1]  # holds pyproject.toml, server_app.py, client_app.py
SIMULATION_CONNECTION = "fedfer-sim"
PROGRESS_LINE = re.compile(r"\[ROUND \d+/\d+\]|aggregate_(train|evaluate): Received|Global evaluation|MetricRecord: \{'macro|ERROR|Exception|Traceback")


@dataclass
class RunOptions:
    """Everything `fedfer run` / `fedfer deploy` can be told; defaults follow the paper."""

    world: str = "small"  # synthetic preset (tiny/small/full) or a CREMA-D directory
    world_seed: int = 0  # which synthetic world is rendered; `task.seed` seeds the split and training
    affectnet: Path | None = None  # AffectNet-layout directory for g() (synthetic worlds bring their own)
    workspace: Path = Path("data")
    results: Path = Path("results")
    name: str | None = None
    clients: int | None = None  # number of test subjects (default: all test actors)
    rounds: int = 2
    fraction_train: float = 1.0
    task: Task = field(default_factory=Task)
    personalize: PersonalizeConfig = field(default_factory=PersonalizeConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    ifer: TrainConfig = field(default_factory=lambda: TrainConfig(stage="ifer", epochs=60))
    vfer: TrainConfig = field(default_factory=lambda: TrainConfig(stage="vfer", epochs=20))
    ifer_checkpoint: Path | None = None
    client_cpus: int = 1  # CPUs Ray reserves per simulated client
    verbose: bool = False  # echo Flower's full log

    @property
    def run_name(self) -> str:
        world = self.world if self.world in SYNTHETIC_PRESETS else Path(self.world).name
        world += f"-w{self.world_seed}" if self.world_seed else ""
        return self.name or f"{world}-K{self.task.num_classes}-seed{self.task.seed}"


def central_stage(options: RunOptions) -> Prepared:
    """World, features, split, g() and v(), each reused from the workspace when already there."""
    world = prepare_world(options.world, options.workspace, seed=options.world_seed, affectnet=options.affectnet)
    return prepare_central(world, options.workspace, options.task, options.features, options.ifer, options.vfer, options.ifer_checkpoint)


def prepare_run(options: RunOptions) -> tuple[Prepared, Path, list[str]]:
    """Central stage plus the run directory with one subject directory per client."""
    prepared = central_stage(options)
    subjects = sorted(prepared.split["test"])
    if options.clients is not None:
        if not 1 <= options.clients <= len(subjects):
            raise ValueError(f"--clients must be between 1 and {len(subjects)} (the test actors of this world), got {options.clients}")
        subjects = subjects[: options.clients]
    run_dir = options.results / options.run_name
    subject_dirs = []
    for actor in subjects:
        clips = [(c.clip_id, c.label) for c in prepared.clips if c.actor == actor]
        # A new run starts from the central v(): an earlier run's personal model must not be evaluated.
        shutil.rmtree(run_dir / "subjects" / actor / PERSONAL_DIR, ignore_errors=True)
        subject_dirs.append(str(write_subject(run_dir / "subjects" / actor, actor, options.task.classes, prepared.store.root, clips).parent.resolve()))
    atomic_write_json(run_dir / "subjects.json", subject_dirs)
    atomic_write_json(run_dir / "options.json", {**asdict(options), "ifer_checkpoint_used": str(prepared.ifer), "central_checkpoint": str(prepared.vfer)})
    return prepared, run_dir, subjects


def run_config_values(options: RunOptions, prepared: Prepared, run_dir: Path, num_clients: int) -> dict:
    """The `[tool.flwr.app.config]` overrides of this run."""
    return FederationConfig(
        num_server_rounds=options.rounds,
        fraction_train=options.fraction_train,
        num_clients=num_clients,
        personalize=replace(options.personalize, seed=options.task.seed),
        run_dir=str(run_dir.resolve()),
        central_checkpoint=str(prepared.vfer.resolve()),
        ifer_checkpoint=str(prepared.ifer.resolve()),
        subjects_file=str((run_dir / "subjects.json").resolve()),
        central_eval=True,
    ).to_run_config()


def stream_flower(app_dir: Path, connection: str, run_config_file: Path, env: dict, log_file: Path, verbose: bool) -> None:
    """`flwr run` with progress on the terminal; raises with the log's path when the run fails."""
    started = time.monotonic()

    def show(line: str) -> None:
        if verbose:
            print(line, end="", flush=True)
        elif PROGRESS_LINE.search(line):
            print(f"  [{time.monotonic() - started:6.1f} s] " + re.sub(r"\x1b\[[0-9;]*m", "", line).strip(), flush=True)

    code = flwr_run(app_dir, connection, run_config_file, env, log_file, on_line=show)
    if code != 0 or "ERROR" in log_file.read_text(errors="replace"):
        raise RuntimeError(f"the Flower run failed (exit code {code}); see {log_file}")
    print(f"Flower run finished in {time.monotonic() - started:.1f} s")


def simulate_prepared(run_dir: Path, values: dict, *, client_cpus: int = 1, verbose: bool = False) -> dict:
    """Run a prepared run (subjects, checkpoints, run-config `values`) as a Flower simulation.

    A SuperLink in simulation mode on free loopback ports, one simulated SuperNode per subject of
    the subjects file; stopped by PID whatever happens. Returns the wall time of `flwr run`.
    """
    run_dir = Path(run_dir)
    num_clients = len(read_subjects_file(Path(values["subjects-file"])))
    flwr_home = run_dir / "flwr-home"
    env = flower_env(flwr_home)
    port = free_port()
    logs = run_dir / "logs"
    with ProcessGroup(logs) as processes:
        superlink = processes.start("superlink", superlink_command(host="127.0.0.1", port=port, database=str(flwr_home / "state.db"), credentials=None, simulation=True), env)
        wait_for_superlink(port, superlink, logs / "superlink.log")
        write_connection(flwr_home, SIMULATION_CONNECTION, f"127.0.0.1:{port}", insecure=True, options={"num-supernodes": num_clients, "backend.client-resources.num-cpus": client_cpus})
        config_file = write_run_config(run_dir / "run_config.toml", values)
        started = time.monotonic()
        stream_flower(APP_DIR, SIMULATION_CONNECTION, config_file, env, logs / "flower.log", verbose)
    return {"flower_seconds": time.monotonic() - started}


def simulate(options: RunOptions) -> Path:
    """The main job: prepare, run the Flower simulation, write the report. Returns the run directory."""
    from fedfer.report import write_report

    started = time.monotonic()
    prepared, run_dir, subjects = prepare_run(options)
    print(f"{len(subjects)} simulated clients (test actors), {options.rounds} rounds → {run_dir}")
    extra = simulate_prepared(run_dir, run_config_values(options, prepared, run_dir, len(subjects)), client_cpus=options.client_cpus, verbose=options.verbose)
    summary = write_report(run_dir, {"mode": "simulation", **extra, "total_seconds": time.monotonic() - started})
    print_summary(summary, run_dir)
    return run_dir


def print_summary(summary: dict, run_dir: Path) -> None:
    def pct(x: float) -> str:
        return f"{100 * x:5.1f}"

    print("\n              macro F1  micro F1")
    for key, label in (("central_before", "central (before)"), ("personalized", "personalized"), ("central_after", "central (after FL)")):
        if summary.get(key):
            print(f"{label:<20}{pct(summary[key]['macro_f1'])}     {pct(summary[key]['micro_f1'])}")
    counts = summary.get("subjects_change", {})
    if counts:
        print(f"subjects (micro F1): {counts['improved']} improved, {counts['unchanged']} unchanged, {counts['worse']} worse")
    rounds = summary.get("rounds", [])
    if rounds:
        r = rounds[-1]
        print(f"per client per round: {r['bytes_up_per_client_mean'] / 1e6:.3f} MB up, {r['bytes_down_per_client_mean'] / 1e6:.3f} MB down")
    print(f"report: {run_dir / 'report.md'}")
    sys.stdout.flush()
