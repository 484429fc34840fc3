"""Adapting v() to a subject without labels through its normalisation layers.

- `adapt_batchnorm` (AdaBN, Li et al., 2017): v()'s BatchNorm statistics re-estimated on the
  subject's own frames; the weights stay, only what "average" means changes.
- `information_maximisation` (TENT, Wang et al., 2021; SHOT, Liang et al., 2020): v()'s BatchNorm
  scales and shifts trained to make its predictions on the subject's clips confident (low entropy
  per clip) and diverse (high entropy of the mean prediction, so no class takes all).
Both touch only BatchNorm parameters and statistics; what a client sends is still v()'s arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from fedfer.model.heads import VFERHead, pad_clips


def _batchnorms(v: VFERHead) -> list[nn.BatchNorm1d]:
    return [m for m in v.modules() if isinstance(m, nn.BatchNorm1d)]


def _batches(clips: Sequence[np.ndarray], batch_size: int, rng: np.random.Generator | None = None):
    order = np.arange(len(clips)) if rng is None else rng.permutation(len(clips))
    for start in range(0, len(order), batch_size):
        yield pad_clips([clips[i] for i in order[start : start + batch_size]])


def adapt_batchnorm(v: VFERHead, clips: Sequence[np.ndarray], batch_size: int = 64) -> None:
    """Replace the running statistics of every BatchNorm in `v` by those of the subject's frames
    (a cumulative average over one pass of `clips`, (T_i, 1280) each); `v` is left in eval mode."""
    if not clips:
        raise ValueError("AdaBN needs at least one clip")
    layers = _batchnorms(v)
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
    v.train()
    with torch.no_grad():
        for batch, lengths in _batches(clips, batch_size):
            v(batch, lengths)
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    v.eval()


def information_maximisation(
    v: VFERHead,
    clips: Sequence[np.ndarray],
    epochs: int,
    lr: float,
    batch_size: int = 16,
    diversity: float = 1.0,
    seed: int = 0,
) -> list[float]:
    """Train only `v`'s BatchNorm affine parameters to minimise mean per-clip entropy minus `diversity`
    × the entropy of the batch's mean prediction. Returns the mean loss per epoch; `v` ends in eval mode."""
    if not clips:
        raise ValueError("entropy minimisation needs at least one clip")
    params = [p for m in _batchnorms(v) for p in (m.weight, m.bias)]
    frozen = [p for p in v.parameters() if all(p is not q for q in params)]
    for p in frozen:
        p.requires_grad_(False)
    optimiser = torch.optim.Adam(params, lr=lr)
    rng = np.random.default_rng(seed)
    history = []
    v.train()
    v.dropout.eval()  # batch statistics, as TENT; no dropout noise in the objective
    try:
        for _ in range(epochs):
            losses = []
            for batch, lengths in _batches(clips, batch_size, rng):
                p = torch.softmax(v(batch, lengths), dim=-1)  # (B, K)
                entropy = -(p * torch.log(p + 1e-8)).sum(dim=1).mean()
                mean = p.mean(dim=0)
                loss = entropy + diversity * (mean * torch.log(mean + 1e-8)).sum()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses.append(float(loss.detach()))
            history.append(float(np.mean(losses)))
    finally:
        for p in frozen:
            p.requires_grad_(True)
        v.eval()
    return history
