"""Configuration dataclasses, one per stage, with the method's defaults.

Flower run settings live in `[tool.flwr.app.config]` (pyproject.toml) and are turned into these
objects by the apps; the command line builds the same objects from its flags.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Central training of g() (stage 'ifer', on still images) or v() (stage 'vfer', on videos)."""

    stage: str = "vfer"
    num_classes: int = 6
    epochs: int = 20  # paper: 60 for g(), 20 for v()
    lr: float = 1e-3  # Adam
    lr_factor: float = 0.5  # ×0.5 when the dev loss stops improving
    plateau_patience: int = 2  # epochs without dev-loss improvement before the lr drops
    batch_size: int = 32
    class_weighted: bool = True  # weighted cross-entropy, weights ∝ 1 / class frequency
    seed: int = 0


@dataclass(frozen=True)
class PersonalizeConfig:
    """A client's unlabeled personalization (§ Personalization of the method)."""

    max_per_class: int = 20  # P: at most this many pseudo-labelled videos per class
    p_threshold: float = 0.5  # drop videos whose top mean probability is below this
    epochs: int = 2
    lr: float = 1e-3
    batch_size: int = 16
    seed: int = 0
