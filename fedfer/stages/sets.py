"""The labelled sets the central heads train on: clips as feature sequences (plurality labels or vote
distributions), AffectNet-layout stills, and still frames of the training actors' videos."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fedfer.config import FeatureConfig
from fedfer.data.datasets import Clip, Task
from fedfer.model.training import LabelledSet
from fedfer.stages.teacher import require_stills
from fedfer.stages.workspace import World, feature_dir


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
    label and votes: training on them uses the KL divergence (`fedfer.model.training.loss_for`)."""
    from fedfer.model.soft_labels import vote_distribution

    actors = set(actors)
    chosen = [c for c in clips if c.actor in actors and c.label is not None and c.votes and sum(c.votes)]
    return LabelledSet([store.load(c.clip_id) for c in chosen], np.stack([vote_distribution(c.votes) for c in chosen]))


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


# crema-frames: frames kept per training clip, and how they are picked ("uniform" over the clip, or
# "peak": the frames whose f() features are farthest from the clip's first frame, the expression's apex
# when a clip starts near neutral). Measured on `small` by simulations/study_teachers.py.
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
