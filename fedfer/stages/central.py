"""The central models, trained once per world, task and settings: g() (the pseudo-labeller) and v().

world → features → split → central g() and v() (`fedfer.stages.workspace`, `fedfer.stages.sets`).
`fedfer train`, `evaluate`, `run` and `deploy` all go through `prepare_stages`, so a second command
reuses what the first computed: rendered corpora, feature caches, the actor split and the central
checkpoints live in a workspace directory (default `./data`) keyed by what determines them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from fedfer.config import FeatureConfig, TrainConfig
from fedfer.data.datasets import Clip, Task
from fedfer.io import digest
from fedfer.model.checkpoint import HeadCard, load_head, save_head
from fedfer.model.training import LabelledSet, train_head
from fedfer.stages.sets import (
    DEFAULT_FRAME_SAMPLING,
    FRAMES_PER_CLIP,
    crema_frame_sets,
    distribution_sequences,
    split_sequences,
    still_features,
    vote_clips,
)
from fedfer.stages.teacher import Teacher, choose_teacher
from fedfer.stages.workspace import World, actor_split, feature_dir, load_clips, video_features


def backbone_id_of(store, clips: list[Clip]) -> str:
    return str(store.meta(clips[0].clip_id)["backbone_id"])


def train_central(
    kind: str,
    load_sets: Callable[[], dict[str, LabelledSet]],
    config: TrainConfig,
    path: Path,
    backbone_id: str,
    classes: tuple[str, ...],
    progress: bool = True,
    device: str = "cpu",
) -> Path:
    """Train g() ('ifer') or v() ('vfer') unless `path` already holds it; resumable per epoch.

    `load_sets` gives the train and dev sets; it is called only when training is needed, so a warm
    run reads no training features."""
    if path.exists():
        load_head(path, stage=kind, backbone_id=backbone_id, classes=classes)  # fails loudly on a mismatch
        return path
    sets = load_sets()
    model, history = train_head(
        sets["train"],
        sets.get("dev"),
        replace(config, stage=kind),
        state_path=path.with_suffix(".state.pt"),
        progress=progress,
        device=device,
    )
    save_head(
        path,
        model,
        HeadCard(stage=kind, classes=classes, backbone_id=backbone_id, config=asdict(config), history=asdict(history)),
    )
    path.with_suffix(".state.pt").unlink(missing_ok=True)
    return path


# The central v()'s checkpoint name per kind of target (CENTRAL_LABELS): plurality labels keep the
# name they always had, so existing caches stay valid.
VFER_KINDS = {"hard": "vfer", "distribution": "vfer-distribution"}


def model_path(workspace: Path, world: World, config: FeatureConfig, kind: str, train: TrainConfig, task: Task) -> Path:
    key = digest({"train": asdict(train), "task": asdict(task)}, 10)
    return (
        workspace
        / "models"
        / world.world_id
        / feature_dir(workspace, world, config).name
        / f"{kind}-K{task.num_classes}-{task.label_mode}-s{task.seed}-{key}.pt"
    )


@dataclass
class Prepared:
    """Everything a federation needs from the stages before it."""

    world: World
    task: Task
    store: object  # FeatureStore of the world's videos
    clips: list[Clip]  # clips with features
    split: dict[str, list[str]]
    teacher: Teacher
    vfer: Path
    backbone_id: str
    workspace: Path  # where the stages cached what they computed
    features: FeatureConfig  # how the features were computed

    @property
    def ifer(self) -> Path | None:
        """The g() the clients pseudo-label with (None for the pixel teacher)."""
        return self.teacher.checkpoint

    def label_shares(self, actors: Iterable[str]) -> np.ndarray:
        """(K,) the class shares of `actors`' labelled clips (the central training split's: what the
        server may tell clients about the class prior; no subject's clips are in it)."""
        chosen = set(actors)
        labels = [c.label for c in self.clips if c.actor in chosen and c.label is not None]
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=self.task.num_classes).astype(np.float64)
        return counts / max(counts.sum(), 1.0)

    def sequences(self, actors: Iterable[str]) -> LabelledSet:
        """The labelled clips of `actors`: per-clip (T, 1280) feature sequences and class indices."""
        return split_sequences(self.store, self.clips, actors)


def prepare_stages(
    world: World,
    workspace: Path,
    task: Task,
    features: FeatureConfig,
    ifer_config: TrainConfig,
    vfer_config: TrainConfig,
    teacher: str | None = None,
    progress: bool = True,
    central_labels: str = "hard",
) -> Prepared:
    """World → features → split → the teacher's g() and v(), each step reusing its cache.

    `teacher`: one of TEACHERS, a trained g()'s path, or None for the world's default
    (`fedfer.stages.teacher.choose_teacher`); `central_labels`: v()'s targets (CENTRAL_LABELS)."""
    if central_labels not in VFER_KINDS:
        raise ValueError(f"central labels must be one of {tuple(VFER_KINDS)}, got {central_labels!r}")
    chosen = choose_teacher(teacher, world)
    clips = load_clips(world, task)
    store, clips = video_features(world, clips, workspace, features, progress)
    if not clips:
        raise RuntimeError(f"no clip of {world.crema_d} produced features; see {store.root / 'summary.csv'}")
    backbone = backbone_id_of(store, clips)
    split = actor_split(world, clips, workspace, task.seed)
    classes = task.classes
    ifer_train = replace(ifer_config, num_classes=task.num_classes, seed=task.seed)
    trained_here = {  # teacher → (checkpoint name, its training sets, read only when it must be trained)
        "affectnet": ("ifer", lambda: still_features(world, workspace, features, task, progress)),
        "crema-frames": (
            f"ifer-crema-{DEFAULT_FRAME_SAMPLING}{FRAMES_PER_CLIP}",
            lambda: crema_frame_sets(store, clips, split["train"], DEFAULT_FRAME_SAMPLING),
        ),
    }
    if chosen.name == "checkpoint":
        load_head(chosen.checkpoint, stage="ifer", backbone_id=backbone, classes=classes)
    elif chosen.name in trained_here:
        name, load_sets = trained_here[chosen.name]
        path = model_path(workspace, world, features, name, ifer_train, task)
        g = train_central("ifer", load_sets, ifer_train, path, backbone, classes, progress, features.device)
        chosen = replace(chosen, checkpoint=g)
    vfer_train = replace(vfer_config, num_classes=task.num_classes, seed=task.seed)

    def vfer_sets() -> dict[str, LabelledSet]:
        if central_labels == "distribution":
            voted = vote_clips(world, task, task.label_mode, [c.clip_id for c in clips])
            return {name: distribution_sequences(store, voted, split[name]) for name in ("train", "dev")}
        return {name: split_sequences(store, clips, split[name]) for name in ("train", "dev")}

    vfer = train_central(
        "vfer",
        vfer_sets,
        vfer_train,
        model_path(workspace, world, features, VFER_KINDS[central_labels], vfer_train, task),
        backbone,
        classes,
        progress,
        features.device,
    )
    return Prepared(world, task, store, clips, split, chosen, vfer, backbone, workspace, features)
