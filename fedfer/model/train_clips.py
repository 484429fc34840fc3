"""Central training of seed 004's R(2+1)D network on face-crop clips, beside fedfer's central v().

One loop: Adam at a constant learning rate (the paper's 1e-3), loss = cross-entropy + the sparse centre
loss (the paper adds them), frames drawn at random per clip and per epoch, the best epoch by dev
cross-entropy kept. The cross-entropy is class-weighted like the central v()'s (`fedfer.model.train`),
so the two are trained alike and differ in their networks, not their objectives.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from fedfer.data.face_cubes import ClipSampling, FaceClips
from fedfer.model.r2plus1d import R2Plus1DFER, SparseCentreLoss
from fedfer.model.training import History, class_weights


@dataclass(frozen=True)
class ClipTrainConfig:
    """Central training of the R(2+1)D network."""

    epochs: int = 10
    batch_size: int = 8  # the paper's 32; smaller keeps a step's memory and time in bounds on a CPU
    lr: float = 1e-3  # Adam, as the paper
    centre_weight: float = 1.0  # loss = CE + centre_weight · sparse centre loss; the paper adds them as they are
    class_weighted: bool = True  # as fedfer's central v()
    seed: int = 0


def train_step(
    model: R2Plus1DFER,
    centre_loss: SparseCentreLoss,
    optimizer: torch.optim.Optimizer,
    clips: Tensor,
    labels: Tensor,
    cross_entropy: nn.Module,
    centre_weight: float,
) -> tuple[float, float]:
    """One optimizer step on a batch of clips (B, 3, T, H, W); returns (cross-entropy, centre loss)."""
    model.train()
    out = model(clips)
    ce = cross_entropy(out.logits, labels)
    centre = centre_loss(out.embedding, out.weights, labels)
    optimizer.zero_grad()
    (ce + centre_weight * centre).backward()
    optimizer.step()
    return ce.item(), centre.item()


def predict_logits(model: R2Plus1DFER, data: FaceClips, frames: int, batch_size: int) -> np.ndarray:
    """(N, K) logits of every clip, each from its evenly spaced frames (deterministic)."""
    model.eval()
    with torch.inference_mode():
        parts = [
            model(data.batch(range(start, min(start + batch_size, len(data))), frames)[0]).logits
            for start in range(0, len(data), batch_size)
        ]
    return torch.cat(parts).numpy()


def fit_clips(
    model: R2Plus1DFER,
    centre_loss: SparseCentreLoss,
    train: FaceClips,
    dev: FaceClips,
    sampling: ClipSampling,
    config: ClipTrainConfig,
    progress: bool = True,
) -> History:
    """Train `model` and the centres in place; they end with the weights of the best dev-loss epoch."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    num_classes = centre_loss.centres.shape[0]
    weights = class_weights(train.labels, num_classes) if config.class_weighted else None
    cross_entropy = nn.CrossEntropyLoss(weight=weights)
    optimizer = torch.optim.Adam([*model.parameters(), *centre_loss.parameters()], lr=config.lr)
    history, best, best_loss = History(), None, math.inf
    epochs = tqdm(range(config.epochs), desc="train r2plus1d", unit="epoch", disable=not progress)
    for epoch in epochs:
        order = rng.permutation(len(train))
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            clips, labels = train.batch(index, sampling.frames, rng)
            ce, centre = train_step(model, centre_loss, optimizer, clips, labels, cross_entropy, config.centre_weight)
            total += (ce + config.centre_weight * centre) * len(index)
        logits = torch.from_numpy(predict_logits(model, dev, sampling.frames, config.batch_size))
        dev_loss = float(cross_entropy(logits, torch.from_numpy(dev.labels)))
        history.train_loss.append(total / len(order))
        history.dev_loss.append(dev_loss)
        history.lr.append(config.lr)
        if dev_loss < best_loss:
            best_loss, history.best_epoch = dev_loss, epoch
            best = copy.deepcopy((model.state_dict(), centre_loss.state_dict()))
        epochs.set_postfix(train=f"{history.train_loss[-1]:.3f}", dev=f"{dev_loss:.3f}")
    if best is not None:
        model.load_state_dict(best[0])
        centre_loss.load_state_dict(best[1])
    return history
