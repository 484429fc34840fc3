"""Labels as vote distributions, the partial-label variant of the method (its seed-002 follow-up).

A clip's target is the softmax of its raters' vote counts with the classes nobody chose masked to
probability zero, and v() is trained on it with the Kullback-Leibler divergence. The plurality label
throws away that raters split between, say, anger and disgust; the distribution keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn


def vote_distribution(votes: Sequence[int]) -> np.ndarray:
    """(K,) float32 target of one clip: softmax over its vote counts, zero-vote classes exactly 0.

    Raises ValueError for a clip without any vote (it has no distribution to learn)."""
    counts = np.asarray(votes, dtype=np.float64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError(f"votes must be non-negative counts per class, got {list(votes)}")
    if counts.sum() == 0:
        raise ValueError(f"a clip with votes {list(votes)} has no vote distribution: give it a plurality label instead")
    logits = np.where(counts > 0, counts, -np.inf)  # the paper's "very large negative number", exactly
    shifted = np.exp(logits - logits.max())
    return (shifted / shifted.sum()).astype(np.float32)


class DistributionKL(nn.Module):
    """KL(target ‖ softmax(logits)), averaged over the batch: logits (B, K), target (B, K) rows summing to 1."""

    def __init__(self) -> None:
        super().__init__()
        self.kl = nn.KLDivLoss(reduction="batchmean")

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.kl(torch.log_softmax(logits, dim=-1), target)
