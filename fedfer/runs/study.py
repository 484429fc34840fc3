"""One path for every run: prepare → federate → report.

`prepare_run` does everything before Flower (the cached stages, one subject folder per test
actor, the run config); a *federate* function (a simulation, a deployment, or the user's own
`flwr run .`) runs the apps over it; `run_study` checks the run's own records and writes the
report. `fedfer prepare` stops after the first step and prints the `flwr run` line that does the rest.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from fedfer.config import PIXEL_TEACHER
from fedfer.data.subject import PERSONAL_DIR, write_subject
from fedfer.federation.resume import last_completed_round, stop_reason
from fedfer.flower.runtime import write_run_config
from fedfer.io import atomic_write_json
from fedfer.model.teacher_shift import format_prior
from fedfer.runconfig import ADAPT_F_PHASE, FederationConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions
from fedfer.stages.central import Prepared, prepare_stages
from fedfer.stages.workspace import prepare_world

# Runs a prepared run: (run folder, run-config values) → facts the results gain (seconds, traffic).
Federate = Callable[[Path, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class PreparedRun:
    """A run folder ready for Flower: subjects written, run config chosen."""

    run: RunDir
    prepared: Prepared
    subjects: list[str]
    values: dict[str, Any]  # `[tool.flwr.app.config]` overrides of this run


def run_config_values(options: RunOptions, prepared: Prepared, run: RunDir, num_clients: int) -> dict[str, Any]:
    """The `[tool.flwr.app.config]` overrides of this run."""
    federation = options.federation
    return replace(
        federation,
        num_clients=num_clients,
        personalize=replace(
            federation.personalize,
            seed=options.task.seed,
            class_prior=federation.personalize.class_prior
            or format_prior(prepared.label_shares(prepared.split["train"])),
        ),
        run_dir=str(run.root.resolve()),
        central_checkpoint=str(prepared.vfer.resolve()),
        ifer_checkpoint=str(prepared.ifer.resolve()) if prepared.ifer is not None else "",
        teacher=prepared.teacher.name,
        subjects_file=str(run.subjects_file.resolve()),
        batchnorm=options.vfer.batchnorm,
    ).to_run_config()


def run_stages(options: RunOptions) -> Prepared:
    """World, features, split, g() and v() of `options`, each reused from the workspace when already there."""
    world = prepare_world(options.world, options.workspace, seed=options.world_seed, affectnet=options.affectnet)
    return prepare_stages(
        world,
        options.workspace,
        options.task,
        options.features,
        options.ifer,
        options.vfer,
        options.teacher,
        central_labels=options.federation.central_labels,
    )


def prepare_run(options: RunOptions) -> PreparedRun:
    """The stages plus the run folder: one subject directory per client, options and run config."""
    prepared = run_stages(options)
    teacher = prepared.teacher
    print(f"pseudo-labeller: {teacher.name} ({teacher.reason})", flush=True)
    subjects = sorted(prepared.split["test"])
    if options.clients is not None:
        if not 1 <= options.clients <= len(subjects):
            raise ValueError(
                f"--clients must be between 1 and {len(subjects)} (the test actors of this world), got "
                f"{options.clients}"
            )
        subjects = subjects[: options.clients]
    run = RunDir(options.run_dir)
    subject_dirs = []
    for actor in subjects:
        own = [c for c in prepared.clips if c.actor == actor]
        # A new run starts from the central v(): an earlier run's personal model must not be evaluated.
        shutil.rmtree(run.subject(actor) / PERSONAL_DIR, ignore_errors=True)
        # The pixel teacher and f()'s adaptation read the subject's own videos (cached features are not recomputed).
        videos = {"video_dir": own[0].path.parent, "feature_config": asdict(options.features)}
        holds_videos = teacher.name == PIXEL_TEACHER or options.federation.adapt.rounds > 0
        manifest = write_subject(
            run.subject(actor),
            actor,
            options.task.classes,
            prepared.store.root,
            [(c.clip_id, c.label) for c in own],
            **(videos if holds_videos else {}),
        )
        subject_dirs.append(str(manifest.parent.resolve()))
    atomic_write_json(run.subjects_file, subject_dirs)
    options_record = {
        **asdict(options),
        "teacher_used": teacher.name,
        "teacher_reason": teacher.reason,
        "ifer_checkpoint_used": str(prepared.ifer or ""),
        "central_checkpoint": str(prepared.vfer),
    }
    atomic_write_json(run.options_file, options_record)
    values = run_config_values(options, prepared, run, len(subjects))
    write_run_config(run.run_config, values)
    return PreparedRun(run, prepared, subjects, values)


def flwr_run_line(prepared: PreparedRun, client_cpus: int = 1) -> str:
    """The Flower-native command that runs a prepared run as a local simulation (from the app's folder)."""
    federation = f"num-supernodes={len(prepared.subjects)} client-resources-num-cpus={client_cpus}"
    return shlex.join(
        [
            "flwr",
            "run",
            ".",
            "--run-config",
            str(prepared.run.run_config.resolve()),
            "--federation-config",
            federation,
            "--stream",
        ]
    )


def check_completed(run: RunDir, rounds: int) -> None:
    """Raise unless the server recorded every round (Flower exits 0 also when a ServerApp gives up early)."""
    recorded = json.loads(run.rounds.read_text()) if run.rounds.is_file() else []
    done = sorted(r["round"] for r in recorded)
    if done[-1:] != [rounds]:
        raise RuntimeError(
            f"the federation recorded rounds {done or 'none'} of {rounds}; see {run.flower_log} and {run.rounds}"
        )


def resume_values(prepared: PreparedRun, options: RunOptions) -> dict[str, Any]:
    """The run config to federate with: with `options.resume`, one that continues the run folder's
    federation after its last completed round; else a new run (its earlier records are overwritten)."""
    if not options.resume:
        return prepared.values
    run, rounds = prepared.run, options.federation.num_server_rounds
    done = last_completed_round(run)
    if done >= rounds:
        raise ValueError(f"{run.root} has completed all {rounds} rounds: nothing to resume (drop --resume)")
    print(f"resuming {run.root} after round {done} (central v() of {run.central_checkpoint(done).name})")
    return replace(FederationConfig.from_run_config(prepared.values), resume_round=done).to_run_config()


def adapt_f(options: RunOptions, federate: Federate) -> tuple[RunOptions, dict[str, Any]]:
    """With `adapt-f-rounds`, the federation that adapts f() first (`fedfer.federation.adapt_f`); returns the
    options the paper's federation then runs with (f() = the adapted weights file) and what the adaptation cost.
    A resumed run whose adaptation completed keeps its adapted f()."""
    rounds, run = options.federation.adapt.rounds, RunDir(options.run_dir)
    if not rounds:  # a run without adaptation: an earlier one's records in this folder would be stale
        for stale in (run.adapt_rounds, run.adapted_f):
            stale.unlink(missing_ok=True)
        return options, {}
    started = time.monotonic()
    if not (options.resume and adapt_completed(run) >= rounds):
        prepared = prepare_run(options)
        print(f"adapting f(): {len(prepared.subjects)} subjects, {rounds} rounds → {run.adapted_f}")
        values = replace(FederationConfig.from_run_config(prepared.values), phase=ADAPT_F_PHASE).to_run_config()
        federate(run.root, values)
        if adapt_completed(run) < rounds:
            raise RuntimeError(f"the adaptation of f() did not complete {rounds} rounds; see {run.adapt_rounds}")
    adapted = replace(options.features, weights=str(run.adapted_f.resolve()))
    return replace(options, features=adapted), {"adapt_f_seconds": time.monotonic() - started}


def adapt_completed(run: RunDir) -> int:
    """The last round of f()'s adaptation the server logged (0: none) once its adapted f() is written."""
    if not (run.adapt_rounds.is_file() and run.adapted_f.is_file()):
        return 0
    return max((r["round"] for r in json.loads(run.adapt_rounds.read_text())), default=0)


def run_study(options: RunOptions, federate: Federate, mode: str) -> tuple[PreparedRun, dict[str, Any]]:
    """Prepare, federate with `federate`, check the records, write the report. Returns the run and its summary."""
    from fedfer.runs.report import print_summary, write_report

    started, rounds = time.monotonic(), options.federation.num_server_rounds
    options, adaptation = adapt_f(options, federate)
    stages_started = time.monotonic()
    prepared = prepare_run(options)
    if adaptation:  # the features re-extracted with the adapted f(), g() and v() trained on them
        adaptation |= {"adapted_stages_seconds": time.monotonic() - stages_started}
    print(f"{mode}: {len(prepared.subjects)} subjects (test actors), {rounds} rounds → {prepared.run.root}")
    values = resume_values(prepared, options)
    try:
        extra = federate(prepared.run.root, values)
    except RuntimeError as err:
        reason = stop_reason(prepared.run)
        if reason is None:
            raise
        raise RuntimeError(f"the federation stopped: {reason}") from err
    check_completed(prepared.run, rounds)
    teacher = {"teacher": prepared.prepared.teacher.name, "teacher_reason": prepared.prepared.teacher.reason}
    variant = {"protocol": options.federation.protocol, "central_labels": options.federation.central_labels}
    facts = {"mode": mode, **teacher, **variant, **adaptation, **extra}
    summary = write_report(prepared.run.root, {**facts, "total_seconds": time.monotonic() - started})
    print_summary(summary, prepared.run.report)
    return prepared, summary
