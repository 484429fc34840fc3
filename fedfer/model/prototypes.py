"""A prototype head over v()'s clip embedding, trained in few-shot episodes (`local-head prototype`).

FedAffect's few-shot learner (seed 003) compares a query with each class's support examples in an
embedding space and is trained in episodes; this is the prototypical form of that idea (Snell et
al., 2017) on v(): a class's prototype is the mean embedding (`VFERHead.embed`, the LSTM's last
state) of its labelled clips, and a clip belongs to the nearest prototype. Training draws episodes
from the subject's labelled clips: per class one query, the others its support, and the loss is the
cross-entropy of the queries over negative squared distances to the support prototypes, so every
layer of v() learns to gather a class's clips together.

Nearest-prototype classification is a linear layer on the embedding:
−‖z − c_k‖² = 2 c_k·z − ‖c_k‖² − ‖z‖², and ‖z‖² is the same for every class. So after training
v()'s output layer is set to weight 2·c_k and bias −‖c_k‖²: the personalized v() stays a v(),
scored, sent and averaged like any other. A class with no labelled clip keeps its received row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from fedfer.model.heads import VFERHead, pad_clips
from fedfer.runconfig import PersonalizeConfig


def embeddings(v: VFERHead, clips: Sequence[np.ndarray]) -> Tensor:
    """(N, 64) v()'s embedding of (T_i, 1280) clips, with v() in whatever mode it is in."""
    return v.embed(*pad_clips(clips))


def prototypes(z: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """(K, D) the mean embedding of each class and (K,) whether the class has any clip."""
    present = torch.bincount(labels, minlength=num_classes) > 0
    sums = torch.zeros(num_classes, z.shape[1], dtype=z.dtype).index_add_(0, labels, z)
    counts = torch.bincount(labels, minlength=num_classes).clamp(min=1).unsqueeze(1).to(z.dtype)
    return sums / counts, present


def episode(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(support, query) positions: one query from each class that has two clips or more, the rest support."""
    query = [rng.choice(np.flatnonzero(labels == k)) for k in np.unique(labels) if (labels == k).sum() >= 2]
    query = np.array(sorted(query), dtype=np.int64)
    return np.setdiff1d(np.arange(len(labels)), query), query


def episode_loss(v: VFERHead, clips: Sequence[np.ndarray], labels: np.ndarray, rng: np.random.Generator) -> Tensor:
    """Cross-entropy of the episode's queries over negative squared distances to the support prototypes."""
    support, query = episode(labels, rng)
    num_classes = v.out.out_features
    z = embeddings(v, [clips[i] for i in np.concatenate([support, query])])
    centres, present = prototypes(z[: len(support)], torch.from_numpy(labels[support]), num_classes)
    logits = -torch.cdist(z[len(support) :], centres).pow(2)
    logits = logits.masked_fill(~present, float("-inf"))  # a class without support cannot be chosen
    return torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels[query]))


def train_prototypes(
    v: VFERHead, clips: Sequence[np.ndarray], labels: np.ndarray, config: PersonalizeConfig
) -> list[float]:
    """Train v() in `config.epochs` epochs of episodes (one per clip ÷ classes, at least one), then set its
    output layer to the nearest-prototype classifier of all the labelled clips. Returns epoch losses
    (empty when no class has two clips to draw a query from: the prototypes alone are set)."""
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    history: list[float] = []
    if any((labels == k).sum() >= 2 for k in np.unique(labels)):
        optimizer = torch.optim.Adam(v.parameters(), lr=config.lr)
        episodes = max(1, len(labels) // max(1, len(np.unique(labels))))
        v.train()
        for _ in range(config.epochs):
            losses = []
            for _ in range(episodes):
                optimizer.zero_grad()
                loss = episode_loss(v, clips, labels, rng)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
            history.append(float(np.mean(losses)))
    set_prototype_classifier(v, clips, labels)
    return history


@torch.no_grad()
def set_prototype_classifier(v: VFERHead, clips: Sequence[np.ndarray], labels: np.ndarray) -> None:
    """v()'s output layer made the nearest-prototype rule of `clips` (eval-mode embeddings); classes
    without a labelled clip keep their rows."""
    v.eval()
    centres, present = prototypes(
        embeddings(v, clips), torch.from_numpy(np.asarray(labels, np.int64)), v.out.out_features
    )
    v.out.weight[present] = 2 * centres[present]
    v.out.bias[present] = -centres[present].pow(2).sum(dim=1)
