"""The stages before federation, each cached and skipped when already done.

world → features → split → central g() and v(). `fedfer train`, `fedfer evaluate`, `fedfer run` and
`fedfer deploy` all go through these functions, so a second command reuses what the first computed:
rendered corpora, feature caches, the actor split and the central checkpoints live in a workspace
directory (default `./data`) keyed by what determines them (preset, seed, feature settings, task).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from fedfer.config import (
    SYNTHETIC_PRESETS,
    TEACHERS,
    FeatureConfig,
    RunOptions,
    Task,
    TrainConfig,
)
from fedfer.data.datasets import Clip
from fedfer.io import digest
from fedfer.model.checkpoint import HeadCard, load_head, save_head
from fedfer.model.train import LabelledSet, train_head

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    """Where a run's corpora are: a CREMA-D-layout video corpus and, optionally, an AffectNet-layout one."""

    world_id: str  # names the cache folders, e.g. "small-s0-v3" or "crema_d-<hash>"
    crema_d: Path
    affectnet: Path | None


def prepare_world(
    world: str, workspace: Path, seed: int = 0, affectnet: Path | None = None, progress: bool = True
) -> World:
    """A synthetic preset (rendered into the workspace if missing) or a real CREMA-D directory."""
    if world in SYNTHETIC_PRESETS:
        from fedfer.synth import render_world
        from fedfer.synth.presets import WORLD_VERSION

        world_id = f"{world}-s{seed}-v{WORLD_VERSION}"
        root = workspace / "worlds" / world_id
        render_world(world, seed, root, corpora=("crema_d", "affectnet"), progress=progress)
        return World(world_id, root / "crema_d", affectnet or root / "affectnet")
    root = Path(world)
    if not (root / "processedResults").is_dir():
        raise FileNotFoundError(
            f"{world!r} is neither a synthetic preset {SYNTHETIC_PRESETS} nor a CREMA-D directory "
            f"(expected {root / 'processedResults'} and {root / 'VideoFlash'})"
        )
    return World(f"crema_d-{digest(str(root.resolve()), 10)}", root, affectnet)


def feature_dir(workspace: Path, world: World, config: FeatureConfig) -> Path:
    """One cache folder per world and feature settings (the per-clip fingerprint guards the rest)."""
    settings = config.cache_settings()
    return (
        workspace
        / "features"
        / world.world_id
        / f"{config.weights if '/' not in config.weights else 'custom'}-{config.image_size}px-{digest(settings, 10)}"
    )


def load_clips(world: World, task: Task) -> list[Clip]:
    from fedfer.data.datasets.crema_d import load_crema_d

    return load_crema_d(
        world.crema_d, label_mode=task.label_mode, num_classes=task.num_classes, ties=task.ties, require_video=True
    )


def load_msp_improv_clips(root: Path) -> list[Clip]:
    """The clips of an MSP-IMPROV-layout directory (the grid's second corpus; see experiment/corpora.py)."""
    from fedfer.data.datasets.msp_improv import load_msp_improv

    return load_msp_improv(root)


def video_features(world: World, clips: list[Clip], workspace: Path, config: FeatureConfig, progress: bool = True):
    """The feature store of the world's videos, extracted where missing. Returns (store, usable clips)."""
    from fedfer.data.datasets.crema_d import speaker_of
    from fedfer.data.extract import extract_video_features

    store = extract_video_features(
        sorted({c.path for c in clips}),
        feature_dir(workspace, world, config) / "crema_d",
        config,
        progress=progress,
        speaker_of=speaker_of,
    )
    done = set(store.clip_ids())
    usable = [c for c in clips if c.clip_id in done]
    if len(usable) < len(clips):
        log.warning(
            "%d of %d clips have no features (see %s)", len(clips) - len(usable), len(clips), store.root / "summary.csv"
        )
    return store, usable


def actor_split(world: World, clips: list[Clip], workspace: Path, seed: int) -> dict[str, list[str]]:
    """56/4/31 train/dev/test actors for CREMA-D sized corpora (91 actors), proportional otherwise;
    saved and reused."""
    from fedfer.data.splits import actor_genders, load_or_create_split

    return load_or_create_split(workspace / "splits" / f"{world.world_id}-seed{seed}.json", actor_genders(clips), seed)


def split_sequences(store, clips: list[Clip], actors: Iterable[str]) -> LabelledSet:
    """The labelled clips of `actors`: per-clip (T, 1280) feature sequences and class indices."""
    actors = set(actors)
    labelled = [c for c in clips if c.actor in actors and c.label is not None]
    return LabelledSet([store.load(c.clip_id) for c in labelled], np.array([c.label for c in labelled]))


def vote_clips(world: World, task: Task, source: str, clip_ids: Iterable[str]) -> list[Clip]:
    """The clips `clip_ids` with their `source` votes ("face" or "av") kept in `Clip.votes` and the
    plurality of those votes as label: what a central v() learns vote distributions from."""
    if source not in ("face", "av"):
        raise ValueError(
            f"vote-distribution targets need per-clip votes: use --labels av or face (got {source!r}), or "
            "--central-labels hard"
        )
    from fedfer.data.datasets.crema_d import load_crema_d

    wanted = set(clip_ids)
    clips = load_crema_d(
        world.crema_d,
        label_mode="distribution",
        num_classes=task.num_classes,
        ties=task.ties,
        require_video=True,
        distribution_source=source,
    )
    return [c for c in clips if c.clip_id in wanted]


def distribution_sequences(store, clips: list[Clip], actors: Iterable[str]) -> LabelledSet:
    """(N, K) vote-distribution targets (`fedfer.model.soft_labels`) of the actors' clips that have a
    label and votes: training on them uses the KL divergence (`fedfer.model.train.loss_for`)."""
    from fedfer.model.soft_labels import vote_distribution

    actors = set(actors)
    chosen = [c for c in clips if c.actor in actors and c.label is not None and c.votes and sum(c.votes)]
    return LabelledSet([store.load(c.clip_id) for c in chosen], np.stack([vote_distribution(c.votes) for c in chosen]))


def require_stills(world: World) -> Path:
    """The world's AffectNet-layout folder; FileNotFoundError naming the remedies when it has none."""
    if world.affectnet is None:
        raise FileNotFoundError(
            "the affectnet teacher trains g() on an AffectNet-layout corpus: pass --affectnet DIR, or choose "
            "another pseudo-labeller with --teacher (crema-frames, fer2013-mini-xception, or a trained g()'s path)"
        )
    return world.affectnet


def still_features(
    world: World, workspace: Path, config: FeatureConfig, task: Task, progress: bool = True
) -> dict[str, LabelledSet]:
    """AffectNet-protocol train/dev/test sets of (N, 1280) still-image features.

    Features are cached once per task for every listed image, whatever the seed: the seed only
    decides which images form train and dev.
    """
    from fedfer.data.datasets.affectnet import load_affectnet
    from fedfer.data.extract import extract_image_features

    require_stills(world)
    protocol = load_affectnet(world.affectnet, num_classes=task.num_classes, seed=task.seed)
    images = sorted(
        {im.path: im for im in protocol.train + protocol.dev + protocol.test}.values(), key=lambda im: str(im.path)
    )
    cache = feature_dir(workspace, world, config) / f"affectnet-K{task.num_classes}.npz"
    x = extract_image_features(
        [(im.path, im.box) for im in images], cache, config, progress=progress
    )  # (N, 1280) float16
    row = {im.path: i for i, im in enumerate(images)}
    ok = ~np.isnan(x).any(axis=1)
    out = {}
    for name, split in (("train", protocol.train), ("dev", protocol.dev), ("test", protocol.test)):
        rows = np.array([row[im.path] for im in split if ok[row[im.path]]], dtype=np.int64)
        out[name] = LabelledSet(x[rows], np.array([im.label for im in split if ok[row[im.path]]]))
    return out


@dataclass(frozen=True)
class Teacher:
    """The pseudo-labeller of a run and why it was chosen (both are printed and reported)."""

    name: str  # one of TEACHERS, or "checkpoint" for a g() given by path
    reason: str
    checkpoint: Path | None = None  # the g() the clients load; None for the pixel teacher


def choose_teacher(teacher: str | None, world: World) -> Teacher:
    """The teacher a run asked for (`--teacher`), or the default for its world; the g() is filled in later.

    Raises FileNotFoundError when the choice cannot work (affectnet without stills, a missing path).
    """
    if teacher is None:
        if world.affectnet is not None:
            return Teacher("affectnet", "default: g() trained on the world's AffectNet-layout stills")
        return Teacher("crema-frames", "no --affectnet: g() trained on the training actors' video frames")
    if teacher == "affectnet":
        require_stills(world)
    if teacher in TEACHERS:
        return Teacher(teacher, "chosen with --teacher")
    path = Path(teacher)
    if not path.is_file():
        raise FileNotFoundError(
            f"--teacher {teacher!r} is neither one of {', '.join(TEACHERS)} nor an existing g() checkpoint file"
        )
    return Teacher("checkpoint", "a trained g() given with --teacher / --ifer-checkpoint", path)


# crema-frames: frames kept per training clip, and how they are picked ("uniform" over the clip, or
# "peak": the frames whose f() features are farthest from the clip's first frame, the expression's apex
# when a clip starts near neutral). Measured on `small` (simulations/study_teachers.py): see README.
FRAMES_PER_CLIP = 8
FRAME_SAMPLING = ("uniform", "peak")
DEFAULT_FRAME_SAMPLING = "uniform"
TEACHER_DEV_EVERY = 8  # every 8th training actor (sorted) is g()'s dev set: its best epoch, without dev/test actors


def sample_frames(sequence: np.ndarray, count: int, sampling: str) -> np.ndarray:
    """`count` frames of one (T, 1280) clip (all when T <= count), in time order: (min(T, count), 1280)."""
    if sampling not in FRAME_SAMPLING:
        raise ValueError(f"frame sampling must be one of {FRAME_SAMPLING}, got {sampling!r}")
    if len(sequence) <= count:
        return sequence
    if sampling == "uniform":
        rows = np.linspace(0, len(sequence) - 1, count).round().astype(np.int64)
    else:
        x = sequence.astype(np.float32)
        rows = np.sort(np.argsort(-np.linalg.norm(x - x[0], axis=1), kind="stable")[:count])
    return sequence[rows]


def frame_set(store, clips: list[Clip], actors: Iterable[str], sampling: str) -> LabelledSet:
    """(N, 1280) still frames of the labelled clips of `actors`, each with its clip's label."""
    labelled = [c for c in clips if c.actor in set(actors) and c.label is not None]
    frames = [sample_frames(store.load(c.clip_id), FRAMES_PER_CLIP, sampling) for c in labelled]
    return LabelledSet(np.concatenate(frames), np.concatenate([[c.label] * len(f) for c, f in zip(labelled, frames)]))


def crema_frame_sets(store, clips: list[Clip], train_actors: Iterable[str], sampling: str) -> dict[str, LabelledSet]:
    """g()'s train and dev frames, both from training actors only: no dev or test actor is ever read."""
    actors = sorted(train_actors)
    dev = set(actors[::TEACHER_DEV_EVERY])
    return {
        "train": frame_set(store, clips, [a for a in actors if a not in dev], sampling),
        "dev": frame_set(store, clips, dev, sampling),
    }


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
    """Everything a federation needs from the central stage."""

    world: World
    task: Task
    store: object  # FeatureStore of the world's videos
    clips: list[Clip]  # clips with features
    split: dict[str, list[str]]
    teacher: Teacher
    vfer: Path
    backbone_id: str

    @property
    def ifer(self) -> Path | None:
        """The g() the clients pseudo-label with (None for the pixel teacher)."""
        return self.teacher.checkpoint

    def sequences(self, actors: Iterable[str]) -> LabelledSet:
        """The labelled clips of `actors`: per-clip (T, 1280) feature sequences and class indices."""
        return split_sequences(self.store, self.clips, actors)


def prepare_central(
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

    `teacher`: see `RunOptions.teacher`; `central_labels`: v()'s targets (`RunOptions.central_labels`)."""
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
    return Prepared(world, task, store, clips, split, chosen, vfer, backbone)


def central_stage(options: RunOptions) -> Prepared:
    """World, features, split, g() and v() of `options`, each reused from the workspace when already there."""
    world = prepare_world(options.world, options.workspace, seed=options.world_seed, affectnet=options.affectnet)
    return prepare_central(
        world,
        options.workspace,
        options.task,
        options.features,
        options.ifer,
        options.vfer,
        options.teacher,
        central_labels=options.central_labels,
    )
