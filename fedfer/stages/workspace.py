"""Where a run's data comes from: the world (a rendered synthetic preset or a real CREMA-D folder), its
clips' cached f() features and the seed's actor split. Each step is cached in the workspace
(default `./data`), keyed by what determines it (preset, seed, feature settings), and skipped when done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from fedfer.config import SYNTHETIC_PRESETS, FeatureConfig
from fedfer.data.datasets import Clip, Task
from fedfer.data.store import FeatureStore
from fedfer.io import digest

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
    """One cache folder per world and feature settings (the per-clip fingerprint guards the rest). A weights
    file is named by its content too: the central heads cached beside its features (`fedfer.stages.central`)
    must not be reused for another f() written to the same path (an adapted f() of another run)."""
    settings = config.cache_settings()
    if Path(config.weights).is_file():
        from fedfer.data.assets import sha256_file

        settings["weights_sha256"] = sha256_file(Path(config.weights))
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
    """The clips of an MSP-IMPROV-layout directory (the grid's second corpus; see fedfer.paper.corpora)."""
    from fedfer.data.datasets.msp_improv import load_msp_improv

    return load_msp_improv(root)


def video_features(
    world: World, clips: list[Clip], workspace: Path, config: FeatureConfig, progress: bool = True
) -> tuple[FeatureStore, list[Clip]]:
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
