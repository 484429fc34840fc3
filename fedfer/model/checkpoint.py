"""Checkpoints of the heads: weights plus the facts needed to use them safely.

A head is only meaningful with the backbone whose features it was trained on and with its class
list; loading checks both so a 4-class g() never labels a 6-class federation and features from
other weights never meet a head trained on different ones.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fedfer import __version__
from fedfer.io import atomic_write_bytes
from fedfer.model.heads import batchnorm_style, build_head


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not fit the run that wants it."""


def save_checkpoint(path: Path, obj: Any) -> None:
    """torch.save, written atomically: a crash never leaves half a checkpoint."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_state(path: Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train it first (`fedfer train`) or fix the path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise CheckpointError(f"cannot read checkpoint {path} ({err}); delete it and train again") from err


@dataclass(frozen=True)
class HeadCard:
    """What a trained head is: stage ('ifer' = g, 'vfer' = v), classes, and the backbone it expects."""

    stage: str
    classes: tuple[str, ...]
    backbone_id: str
    config: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    fedfer_version: str = __version__
    batchnorm: str = ""  # the head's BatchNorm convention; save_head records the model's own


def save_head(path: Path, model: nn.Module, card: HeadCard) -> None:
    card = replace(card, batchnorm=batchnorm_style(model))
    save_checkpoint(path, {"card": asdict(card), "state_dict": model.state_dict()})


def load_head(
    path: Path, *, stage: str, backbone_id: str | None = None, classes: tuple[str, ...] | None = None
) -> tuple[nn.Module, HeadCard]:
    """Load a head and check it against what the caller will feed it.

    Raises CheckpointError naming the file and the mismatch (stage, class list, backbone).
    """
    saved = load_state(path)
    try:
        # Cards written before the BatchNorm setting existed are PyTorch-default heads.
        card = HeadCard(**{"batchnorm": "torch", **saved["card"], "classes": tuple(saved["card"]["classes"])})
        state = saved["state_dict"]
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{path} is not a fedfer head checkpoint (missing {err})") from err
    if card.stage != stage:
        raise CheckpointError(f"{path} holds a '{card.stage}' head but a '{stage}' head is needed")
    if classes is not None and tuple(classes) != card.classes:
        raise CheckpointError(
            f"{path} was trained for classes {list(card.classes)} but this run uses {list(classes)}: "
            "train a head for this task"
        )
    if backbone_id is not None and backbone_id != card.backbone_id:
        raise CheckpointError(
            f"{path} was trained on features of backbone '{card.backbone_id}' "
            f"but these features come from '{backbone_id}': "
            "retrain the head on these features or extract features with the original backbone"
        )
    model = build_head(stage, len(card.classes), card.batchnorm)
    model.load_state_dict(state)
    return model.eval(), card
