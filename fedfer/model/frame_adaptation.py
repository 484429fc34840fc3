"""Adapting v() to a subject without labels through its normalisation layers.

- `adapt_batchnorm` (AdaBN, Li et al., 2017): v()'s BatchNorm statistics re-estimated on the
  subject's own frames; the weights stay, only what "average" means changes.
- `subject_baseline`: the same for g(), whose first layer is a BatchNorm over f()'s 1280 features,
  so the subject's average frame (its resting face included) becomes g()'s zero: a per-subject
  baseline normalisation of the teacher's input. It is computed over all of the subject's frames,
  not each clip's first ones: CREMA-D's clips do not reliably start neutral
  (`python simulations/glimpse_real_clips.py --onset`).
- `information_maximisation` (TENT, Wang et al., 2021; SHOT, Liang et al., 2020): v()'s BatchNorm
  scales and shifts trained to make its predictions on the subject's clips confident (low entropy
  per clip) and diverse (high entropy of the mean prediction, so no class takes all).
Both touch only BatchNorm parameters and statistics; what a client sends is still v()'s arrays.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from fedfer.model.heads import IFERHead, VFERHead, pad_clips


def _batchnorms(model: nn.Module) -> list[nn.BatchNorm1d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]


def _batches(clips: Sequence[np.ndarray], batch_size: int, rng: np.random.Generator | None = None):
    order = np.arange(len(clips)) if rng is None else rng.permutation(len(clips))
    for start in range(0, len(order), batch_size):
        yield pad_clips([clips[i] for i in order[start : start + batch_size]])


def reestimate_batchnorm(model: nn.Module, batches: Iterable[tuple]) -> None:
    """Replace the running statistics of every BatchNorm in `model` by a cumulative average over one
    pass of `batches` (each the positional arguments of one forward call); `model` ends in eval mode."""
    layers = _batchnorms(model)
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
    model.train()
    with torch.no_grad():
        for batch in batches:
            model(*batch)
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    model.eval()


def adapt_batchnorm(v: VFERHead, clips: Sequence[np.ndarray], batch_size: int = 64) -> None:
    """Replace the running statistics of every BatchNorm in `v` by those of the subject's frames
    (a cumulative average over one pass of `clips`, (T_i, 1280) each); `v` is left in eval mode."""
    if not clips:
        raise ValueError("AdaBN needs at least one clip")
    reestimate_batchnorm(v, _batches(clips, batch_size))


def subject_baseline(g: IFERHead, clips: Sequence[np.ndarray]) -> IFERHead:
    """A copy of g() whose BatchNorm statistics are those of the subject's frames ((T_i, 1280) clips,
    all frames in one batch: a few thousand per subject); `g` itself is unchanged."""
    arrays = [np.asarray(c, dtype=np.float32) for c in clips]
    count = sum(len(a) for a in arrays)
    if count < 2:
        raise ValueError(f"a subject baseline needs at least 2 frames to estimate statistics from, got {count}")
    frames = torch.from_numpy(np.concatenate(arrays))  # (ΣT_i, 1280)
    adapted = copy.deepcopy(g)
    reestimate_batchnorm(adapted, [(frames,)])
    return adapted


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
