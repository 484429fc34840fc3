"""Central training of the heads on frozen f() features: g() on still images, v() on videos.

Both stages share one loop (Adam, class-weighted cross-entropy, learning rate ×0.5 when the dev loss
stops improving, best model by dev loss) and differ only in how a batch is formed: single feature
vectors for g(), zero pre-padded sequences for v(). Training resumes from the last epoch's
checkpoint when the same configuration is run again.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from fedfer.config import TrainConfig
from fedfer.device import resolve_device
from fedfer.model.checkpoint import load_state, save_checkpoint
from fedfer.model.heads import build_head
from fedfer.model.inference import Sequences, logits_for
from fedfer.model.soft_labels import DistributionKL

log = logging.getLogger(__name__)


@dataclass
class LabelledSet:
    """Inputs and targets of one split: per-clip sequences (v) or an (N, 1280) matrix (g).

    labels: (N,) int64 class indices, or (N, K) float32 target distributions (`soft_labels`), which
    are trained with the KL divergence instead of the cross-entropy."""

    inputs: Sequences | np.ndarray
    labels: np.ndarray  # (N,) int64 or (N, K) float32

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        self.labels = labels.astype(np.float32) if labels.ndim == 2 else labels.astype(np.int64)
        if len(self.inputs) != len(self.labels):
            raise ValueError(f"{len(self.inputs)} inputs but {len(self.labels)} labels")
        if len(self.labels) == 0:
            raise ValueError("a training or dev split is empty: check the split file and the label mode")


@dataclass
class History:
    """Per-epoch record of a training run (written into the checkpoint)."""

    train_loss: list[float] = field(default_factory=list)
    dev_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int = -1


def class_weights(labels: np.ndarray, num_classes: int) -> Tensor:
    """Weights ∝ 1 / class frequency, normalised so a balanced set gets weight 1 everywhere.

    Rare classes count more, so the model does not win by predicting the majority (neutral, in
    CREMA-D). A class absent from `labels` gets weight 1: it contributes no loss term anyway.
    """
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


def loss_for(labels: np.ndarray, num_classes: int, weighted: bool) -> nn.Module:
    """Cross-entropy (class-weighted when asked) for class indices; KL divergence for (N, K)
    distributions, unweighted: a distribution has no single class to weight by."""
    if labels.ndim == 2:
        return DistributionKL()
    return nn.CrossEntropyLoss(weight=class_weights(labels, num_classes) if weighted else None)


def mean_loss(model: nn.Module, data: LabelledSet, loss_fn: nn.Module, batch_size: int) -> float:
    model.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(data.labels), batch_size):
            index = range(start, min(start + batch_size, len(data.labels)))
            logits = logits_for(model, data.inputs, index)
            labels = torch.from_numpy(data.labels[list(index)]).to(logits.device)
            total += float(loss_fn(logits, labels)) * len(index)
    return total / len(data.labels)


def run_epoch(
    model: nn.Module,
    data: LabelledSet,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """One pass over `data` in a shuffled order; returns the mean training loss."""
    model.train()
    order = rng.permutation(len(data.labels))
    # A BatchNorm layer cannot train on a batch of one: fold a lone last item into the batch before.
    starts = list(range(0, len(order), batch_size))
    if len(starts) > 1 and len(order) - starts[-1] == 1:
        starts.pop()
    total = 0.0
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else len(order)
        index = order[start:stop]
        optimizer.zero_grad()
        logits = logits_for(model, data.inputs, index)
        loss = loss_fn(logits, torch.from_numpy(data.labels[index]).to(logits.device))
        loss.backward()
        optimizer.step()
        total += loss.item() * len(index)
    return total / len(order)


def fit(
    model: nn.Module,
    train: LabelledSet,
    dev: LabelledSet | None,
    config: TrainConfig,
    *,
    weighted: bool | None = None,
    state_path: Path | None = None,
    progress: bool = True,
    on_epoch: Callable[[int, float, float], None] | None = None,
    device: str = "cpu",
) -> History:
    """Train `model` in place and leave it holding the weights of its best dev-loss epoch
    (`config.restore_best`, fedfer's choice; the paper keeps the last epoch, as `restore_best=False` does).

    Without a dev set the last epoch is kept (the clients' personalization has none). With
    `state_path`, the model/optimizer/scheduler state after every epoch is written there and a
    rerun with the same configuration continues from it instead of starting over. `device` ("cpu", "cuda",
    "auto": `fedfer.device`) is where the epochs run; the model ends where it started, as callers expect.
    """
    home = next(model.parameters()).device
    model.to(resolve_device(device))
    try:
        return _fit(model, train, dev, config, weighted, state_path, progress, on_epoch)
    finally:
        model.to(home)


def _fit(
    model: nn.Module,
    train: LabelledSet,
    dev: LabelledSet | None,
    config: TrainConfig,
    weighted: bool | None,
    state_path: Path | None,
    progress: bool,
    on_epoch: Callable[[int, float, float], None] | None,
) -> History:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    weighted = config.class_weighted if weighted is None else weighted
    loss_fn = loss_for(train.labels, config.num_classes, weighted).to(next(model.parameters()).device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.lr_factor, patience=config.plateau_patience
    )
    history, best_state, best_loss, start_epoch = History(), None, math.inf, 0

    if state_path is not None and state_path.exists():
        saved = load_state(state_path)
        if saved.get("config") == asdict(config):
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            history = History(**saved["history"])
            best_state, best_loss, start_epoch = saved["best_state"], saved["best_loss"], saved["epoch"] + 1
            rng.bit_generator.state = saved["numpy_rng"]
            torch.set_rng_state(saved["torch_rng"])
            log.info("resuming %s training at epoch %d from %s", config.stage, start_epoch + 1, state_path)
        else:
            log.warning("ignoring %s: it was written for another training configuration", state_path)

    epochs = tqdm(
        range(start_epoch, config.epochs),
        desc=f"train {config.stage}",
        unit="epoch",
        disable=not progress,
        initial=start_epoch,
        total=config.epochs,
    )
    for epoch in epochs:
        train_loss = run_epoch(model, train, loss_fn, optimizer, config.batch_size, rng)
        dev_loss = mean_loss(model, dev, loss_fn, config.batch_size) if dev is not None else train_loss
        scheduler.step(dev_loss)
        history.train_loss.append(train_loss)
        history.dev_loss.append(dev_loss)
        history.lr.append(optimizer.param_groups[0]["lr"])
        if dev is None:
            history.best_epoch = epoch  # without a dev set the last epoch is the one kept: nothing to copy
        elif dev_loss < best_loss:
            best_loss, best_state, history.best_epoch = dev_loss, copy.deepcopy(model.state_dict()), epoch
        epochs.set_postfix(train=f"{train_loss:.3f}", dev=f"{dev_loss:.3f}", lr=f"{history.lr[-1]:.1e}")
        if on_epoch is not None:
            on_epoch(epoch, train_loss, dev_loss)
        if state_path is not None:
            save_checkpoint(
                state_path,
                {
                    "config": asdict(config),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "history": asdict(history),
                    "best_state": best_state,
                    "best_loss": best_loss,
                    "epoch": epoch,
                    "numpy_rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                },
            )
    if best_state is not None and config.restore_best:
        model.load_state_dict(best_state)
    return history


def train_head(
    train: LabelledSet,
    dev: LabelledSet | None,
    config: TrainConfig,
    state_path: Path | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> tuple[nn.Module, History]:
    """Build a fresh g() or v() (by `config.stage`) and train it on `device`; it is returned on the CPU."""
    torch.manual_seed(config.seed)
    model = build_head(config.stage, config.num_classes, config.batchnorm)
    history = fit(model, train, dev, config, state_path=state_path, progress=progress, device=device)
    return model.eval(), history
