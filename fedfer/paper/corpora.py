"""The grid's labelled corpora: CREMA-D (through `fedfer.stages`) and MSP-IMPROV, each as
features, clips and a speaker-independent split, so a table can train on one and personalize on
the other. Everything is cached in the workspace exactly as the stages cache CREMA-D.

MSP-IMPROV follows the paper: 12 actors split 6 train / 2 dev / 4 test (gender balanced), 4 classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedfer.config import SYNTHETIC_PRESETS, FeatureConfig
from fedfer.data.datasets import Clip
from fedfer.model.training import LabelledSet
from fedfer.stages.sets import split_sequences
from fedfer.stages.workspace import World, feature_dir, load_msp_improv_clips

MSP_IMPROV_SPLIT = (6, 2, 4)  # train / dev / test actors, the paper's partition
MSP_IMPROV_CORPUS = "msp_improv"


@dataclass
class Corpus:
    """One corpus' clips with features and its actor split."""

    name: str  # "crema_d" or "msp_improv"
    store: object  # FeatureStore
    clips: list[Clip]
    split: dict[str, list[str]]

    def sequences(self, actors) -> LabelledSet:
        return split_sequences(self.store, self.clips, actors)

    def subject_clips(self, actor: str) -> list[Clip]:
        """All of an actor's clips, labelled or not (a device pseudo-labels them all)."""
        return [c for c in self.clips if c.actor == actor]


def msp_improv_root(world: World, msp_improv: Path | None, workspace: Path, preset: str, world_seed: int) -> Path:
    """The MSP-IMPROV directory: the given one, or the synthetic world's (rendered when missing)."""
    if msp_improv is not None:
        return msp_improv
    if preset not in SYNTHETIC_PRESETS:
        raise FileNotFoundError(
            f"the real world {preset!r} has no MSP-IMPROV corpus: pass --msp-improv DIR (the licensed release) "
            "or run the grid on a synthetic world"
        )
    from fedfer.synth import render_world

    root = workspace / "worlds" / world.world_id
    render_world(preset, world_seed, root, corpora=(MSP_IMPROV_CORPUS,), progress=False)
    return root / MSP_IMPROV_CORPUS


def load_msp_improv_corpus(root: Path, world: World, workspace: Path, features: FeatureConfig, seed: int) -> Corpus:
    """MSP-IMPROV's clips with cached f() features and the seed's 6/2/4 split (saved and reused)."""
    from fedfer.data.extract import extract_video_features
    from fedfer.data.splits import actor_genders, load_or_create_split

    clips = load_msp_improv_clips(root)
    actor_of = {c.path.stem: c.actor for c in clips}
    store = extract_video_features(
        sorted({c.path for c in clips}),
        feature_dir(workspace, world, features) / MSP_IMPROV_CORPUS,
        features,
        progress=False,
        speaker_of=lambda path: actor_of.get(path.stem),
    )
    done = set(store.clip_ids())
    usable = [c for c in clips if c.clip_id in done]
    if not usable:
        raise RuntimeError(f"no MSP-IMPROV clip of {root} produced features; see {store.root / 'summary.csv'}")
    split = load_or_create_split(
        workspace / "splits" / f"{world.world_id}-{MSP_IMPROV_CORPUS}-seed{seed}.json",
        actor_genders(usable),
        seed,
        counts=MSP_IMPROV_SPLIT,
    )
    return Corpus(MSP_IMPROV_CORPUS, store, usable, split)
