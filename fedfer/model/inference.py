"""A trained head applied to features: class probabilities and confusion counts, in eval mode.

g() takes an (N, 1280) matrix of frame features; v() takes a list of (T_i, 1280) clips, which are
zero pre-padded per batch (the padding never changes a clip's output, see `fedfer.model.heads`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from fedfer.model.heads import VFERHead, pad_clips

Sequences = Sequence[np.ndarray]  # each (T_i, 1280) float16 features of one clip


def logits_for(model: nn.Module, inputs: Sequences | np.ndarray, index: Sequence[int]) -> Tensor:
    """Run `model` on the items at `index`: feature rows for g(), padded sequences for v(), on the model's device."""
    device = next(model.parameters()).device
    if isinstance(model, VFERHead):
        batch, lengths = pad_clips([inputs[i] for i in index])
        return model(batch.to(device), lengths)
    return model(torch.from_numpy(np.asarray(inputs[list(index)], dtype=np.float32)).to(device))


def predict_proba(model: nn.Module, inputs: Sequences | np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class probabilities (N, K) in eval mode."""
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            index = range(start, min(start + batch_size, len(inputs)))
            out.append(torch.softmax(logits_for(model, inputs, index), dim=-1))
    return torch.cat(out).cpu().numpy() if out else np.zeros((0, 0), dtype=np.float32)


def confusion(model: nn.Module, clips: Sequence[np.ndarray], truth: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    if len(clips) == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    # Imported here: scikit-learn (and SciPy) cost a ClientApp process 0.8 s of start-up, and only
    # runs that count label-derived metrics need them.
    from sklearn.metrics import confusion_matrix

    predicted = predict_proba(model, clips).argmax(axis=1)
    return confusion_matrix(truth, predicted, labels=list(range(num_classes))).astype(np.int64)
