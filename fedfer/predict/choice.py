"""Which v() to use, and the feature settings its inputs must be made with.

A v() only means something with the f() and crop size it was trained on: a run records them in its
`options.json` ("features"), the checkpoint's card names the backbone, and loading checks both, so
a personal model is never fed features of another backbone or scored against another class list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from fedfer.config import FeatureConfig
from fedfer.data.backbone import Backbone, load_frame_encoder
from fedfer.data.datasets import Task
from fedfer.data.subject import personal_checkpoint
from fedfer.model.checkpoint import CheckpointError, HeadCard, load_head
from fedfer.model.heads import IFERHead, VFERHead
from fedfer.rundir import RunDir


@dataclass(frozen=True)
class ModelChoice:
    """A v() checkpoint (and optionally g()) with the feature settings and classes it must meet."""

    v_path: Path
    g_path: Path | None
    features: FeatureConfig
    classes: tuple[str, ...] | None  # the run's task classes; None: the checkpoint's own
    description: str  # e.g. "personal v() of subject 1008 in results/small-K6-seed0"


def read_run_options(run: RunDir) -> dict[str, Any]:
    """The run's `options.json` (what `fedfer run` was told), or an error naming the remedy."""
    if not run.options_file.is_file():
        raise FileNotFoundError(
            f"{run.root} is not a fedfer run folder (no {run.options_file.name}): pass the folder `fedfer run` "
            "wrote, e.g. --run results/small-K6-seed0, or a v() file with --checkpoint"
        )
    return json.loads(run.options_file.read_text())


def _feature_settings(recorded: dict[str, Any], overrides: dict[str, Any], source: str) -> FeatureConfig:
    """The recorded settings; an override that contradicts them is an error, not a silent change."""
    known = {f.name for f in fields(FeatureConfig)}
    config = FeatureConfig(**{k: v for k, v in recorded.items() if k in known})
    for key, value in overrides.items():
        if value is not None and value != getattr(config, key):
            raise ValueError(
                f"{source} was trained on features with {key}={getattr(config, key)!r}, not {value!r}: "
                f"leave --{key.replace('_', '-')} out to use the run's setting"
            )
    return config


def choose_model(
    run: Path | None = None,
    subject: str | None = None,
    checkpoint: Path | None = None,
    ifer_checkpoint: Path | None = None,
    feature_overrides: dict[str, Any] | None = None,
) -> ModelChoice:
    """The v() a user asked for: `run` alone → its central v() after the last round; `run` and
    `subject` → that subject's personalized v(); `checkpoint` → that file, with the feature settings
    of `feature_overrides` (FeatureConfig fields; defaults where unset)."""
    overrides = feature_overrides or {}
    if (run is None) == (checkpoint is None):
        raise ValueError("choose the model with --run RUN_DIR (optionally --subject ID) or with --checkpoint V_PT")
    if checkpoint is not None:
        if subject is not None:
            raise ValueError("--subject picks a subject of a run: use it with --run, not with --checkpoint")
        settings = replace(FeatureConfig(), **{k: v for k, v in overrides.items() if v is not None})
        return ModelChoice(Path(checkpoint), ifer_checkpoint, settings, None, f"v() {checkpoint}")
    rundir = RunDir(Path(run))
    options = read_run_options(rundir)
    features = _feature_settings(options.get("features", {}), overrides, str(rundir.root))
    classes = Task(**options["task"]).classes
    g_path = ifer_checkpoint or Path(options["ifer_checkpoint_used"])
    if subject is None:
        rounds = int(options["federation"]["num_server_rounds"])
        path = rundir.central_checkpoint(rounds)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: the run in {rundir.root} has not finished round {rounds}; "
                "finish it (`fedfer run` with the same flags) or pass --checkpoint"
            )
        return ModelChoice(path, g_path, features, classes, f"central v() after round {rounds} of {rundir.root}")
    path = personal_checkpoint(rundir.subject(subject))
    if not path.is_file():
        known = sorted(d.name for d in rundir.subjects_dir.glob("*") if personal_checkpoint(d).is_file())
        raise FileNotFoundError(
            f"subject {subject!r} has no personalized v() in {rundir.root} ({path} is missing); "
            f"subjects with one: {', '.join(known) or 'none (has the federation run?)'}"
        )
    return ModelChoice(path, g_path, features, classes, f"personal v() of subject {subject} in {rundir.root}")


@dataclass
class LoadedModel:
    """f(), v() and (optionally) g(), checked to belong together; ready for a pipeline or an export."""

    choice: ModelChoice
    backbone: Backbone
    v: VFERHead
    v_card: HeadCard
    g: IFERHead | None

    @property
    def classes(self) -> tuple[str, ...]:
        return self.v_card.classes


def load_model(choice: ModelChoice, with_g: bool = False) -> LoadedModel:
    """Load the chosen heads and f(); CheckpointError when the backbone or the classes do not match."""
    backbone = load_frame_encoder(choice.features.weights)
    v, card = load_head(choice.v_path, stage="vfer", backbone_id=backbone.backbone_id, classes=choice.classes)
    g = None
    if with_g:
        if choice.g_path is None:
            raise CheckpointError("exporting g() needs its checkpoint: pass --ifer-checkpoint G_PT (or use --run)")
        g, _ = load_head(choice.g_path, stage="ifer", backbone_id=backbone.backbone_id, classes=card.classes)
    return LoadedModel(choice, backbone, v, card, g)  # type: ignore[arg-type]
