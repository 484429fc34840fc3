"""Configuration dataclasses, one per stage, with the method's defaults.

Flower run settings live in `[tool.flwr.app.config]` (pyproject.toml) and are turned into these
objects by the apps; the command line builds the same objects from its flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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


@dataclass(frozen=True)
class FederationConfig:
    """One federated run, as `[tool.flwr.app.config]` (kebab-case keys) describes it."""

    num_server_rounds: int = 2
    fraction_train: float = 1.0
    num_clients: int = 2  # the server waits until this many SuperNodes are connected
    personalize: PersonalizeConfig = PersonalizeConfig()
    run_dir: str = ""  # where the server writes rounds, checkpoints and evaluations
    central_checkpoint: str = ""  # v() the federation starts from
    ifer_checkpoint: str = ""  # g(), the clients' pseudo-labeller
    subjects_file: str = ""  # JSON list of subject directories, in partition-id order
    central_eval: bool = True  # evaluate the central v() on the subjects' labelled clips each round

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, Any]) -> FederationConfig:
        """Build from Flower's run config; every key must be known (a typo is an error, not a default)."""
        known = set(cls().to_run_config())
        unknown = set(run_config) - known
        if unknown:
            raise ValueError(f"unknown run-config keys {sorted(unknown)}; known keys: {sorted(known)}")
        c = dict(run_config)
        defaults = cls()
        p = PersonalizeConfig()
        return cls(
            num_server_rounds=int(c.get("num-server-rounds", defaults.num_server_rounds)),
            fraction_train=float(c.get("fraction-train", defaults.fraction_train)),
            num_clients=int(c.get("num-clients", defaults.num_clients)),
            personalize=PersonalizeConfig(
                max_per_class=int(c.get("max-per-class", p.max_per_class)),
                p_threshold=float(c.get("p-threshold", p.p_threshold)),
                epochs=int(c.get("local-epochs", p.epochs)),
                lr=float(c.get("learning-rate", p.lr)),
                batch_size=int(c.get("batch-size", p.batch_size)),
                seed=int(c.get("seed", p.seed)),
            ),
            run_dir=str(c.get("run-dir", "")),
            central_checkpoint=str(c.get("central-checkpoint", "")),
            ifer_checkpoint=str(c.get("ifer-checkpoint", "")),
            subjects_file=str(c.get("subjects-file", "")),
            central_eval=bool(c.get("central-eval", True)),
        )

    def to_run_config(self) -> dict[str, Any]:
        """The run config (kebab-case keys) that `from_run_config` reads back into this object."""
        p = self.personalize
        return {
            "num-server-rounds": self.num_server_rounds,
            "fraction-train": self.fraction_train,
            "num-clients": self.num_clients,
            "local-epochs": p.epochs,
            "learning-rate": p.lr,
            "batch-size": p.batch_size,
            "max-per-class": p.max_per_class,
            "p-threshold": p.p_threshold,
            "seed": p.seed,
            "run-dir": self.run_dir,
            "central-checkpoint": self.central_checkpoint,
            "ifer-checkpoint": self.ifer_checkpoint,
            "subjects-file": self.subjects_file,
            "central-eval": self.central_eval,
        }


@dataclass(frozen=True)
class FeatureConfig:
    """Face cropping and frozen f() feature extraction (`fedfer features`)."""

    image_size: int = 224  # face crop side in pixels, f()'s input (paper: 224)
    margin: float = 0.2  # fraction of the face box's side added on each side of the square crop
    detector: str = "mediapipe"  # "mediapipe" (BlazeFace short-range) or "haar" (OpenCV, fallback)
    min_confidence: float = 0.5  # MediaPipe's minimum detection score
    weights: str = "offline"  # "offline" (ported Keras MobileNetV2), "imagenet", or a .pt/.pth path
    batch_size: int = 8  # frames per f() forward pass (larger batches ran slower on 2 CPU cores at 160-224 px)
    workers: int = 2  # decode + detect processes, capped at the CPU count; 0 runs them in-process
    frame_step: int = 1  # keep every n-th frame

    def __post_init__(self) -> None:
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32 pixels, got {self.image_size}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.detector not in ("mediapipe", "haar"):
            raise ValueError(f"detector must be 'mediapipe' or 'haar', got {self.detector!r}")
        if self.batch_size < 1 or self.workers < 0 or self.frame_step < 1:
            raise ValueError(f"need batch_size >= 1, workers >= 0, frame_step >= 1; got {self.batch_size}, {self.workers}, {self.frame_step}")
