"""The method's trained networks, g() image head (IFER) and v() video head (VFER), and the parameter
table of all three (f(), the frozen frame encoder, is `fedfer.data.encoder`).

Layer sizes follow Salman & Busso (ICMI 2022), Table "Networks" in the design notes. The paper gives
no activations or dropout; fedfer uses ReLU after every dense layer (before its BatchNorm) and
dropout 0.2 on the last hidden representation of each head, a common Keras-era choice that keeps the
heads small and trains stably on 2 CPU cores.

Sequences reach v() zero pre-padded, as Keras' `pad_sequences` would make them. v() never lets a
padded frame touch its computation: the per-frame layers run on valid frames only (so BatchNorm
statistics in training see no zeros) and the LSTM gets a packed sequence, so the output for a clip
does not depend on how much padding surrounds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_sequence

from fedfer.config import DEFAULT_BATCHNORM
from fedfer.data.encoder import FEATURE_DIM, FrameEncoder

# BatchNorm conventions: (momentum of the running statistics in PyTorch's sense, eps). The paper's
# Keras layers keep 99% of the old statistics per step (Keras momentum 0.99) and use eps 1e-3;
# PyTorch's defaults keep 90% and use eps 1e-5. The difference matters on a client: after 16
# fine-tuning steps PyTorch's statistics hold about 81% of the subject's own few clips, Keras' 15%.
BATCHNORM: dict[str, tuple[float, float]] = {"keras": (0.01, 1e-3), "torch": (0.1, 1e-5)}


def batchnorm(features: int, style: str) -> nn.BatchNorm1d:
    """A BatchNorm1d in the convention `style` ("keras", the paper's framework, or "torch")."""
    if style not in BATCHNORM:
        raise ValueError(f"unknown BatchNorm convention {style!r}: use one of {sorted(BATCHNORM)}")
    momentum, eps = BATCHNORM[style]
    return nn.BatchNorm1d(features, eps=eps, momentum=momentum)


def batchnorm_style(model: nn.Module) -> str:
    """The convention of `model`'s BatchNorm layers (all of a head's layers share one)."""
    styles = {
        name
        for m in model.modules()
        if isinstance(m, nn.BatchNorm1d)
        for name, v in BATCHNORM.items()
        if v == (m.momentum, m.eps)
    }
    if len(styles) != 1:
        raise ValueError(f"{type(model).__name__} mixes or lacks the known BatchNorm conventions {sorted(BATCHNORM)}")
    return styles.pop()


class IFERHead(nn.Module):
    """g(): BatchNorm(1280) → Dense 512 → BatchNorm(512) → Dense K (logits; softmax outside)."""

    def __init__(self, num_classes: int, dropout: float = 0.2, batchnorm_style: str = DEFAULT_BATCHNORM) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.net = nn.Sequential(
            batchnorm(FEATURE_DIM, batchnorm_style),
            nn.Linear(FEATURE_DIM, 512),
            nn.ReLU(inplace=True),
            batchnorm(512, batchnorm_style),
            nn.Dropout(dropout),
            nn.Linear(512, num_classes),
        )

    def forward(self, features: Tensor) -> Tensor:
        """features: (..., 1280) → logits (..., K). Works on single frames and on (T, 1280) clips."""
        lead = features.shape[:-1]
        return self.net(features.reshape(-1, FEATURE_DIM).float()).reshape(*lead, -1)


class VFERHead(nn.Module):
    """v(): per-frame BN(1280) → Dense 128 → BN(128) → Dense 64 → BN(64), LSTM(64), last step → Dense K."""

    def __init__(self, num_classes: int, dropout: float = 0.2, batchnorm_style: str = DEFAULT_BATCHNORM) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.frame = nn.Sequential(
            batchnorm(FEATURE_DIM, batchnorm_style),
            nn.Linear(FEATURE_DIM, 128),
            nn.ReLU(inplace=True),
            batchnorm(128, batchnorm_style),
            nn.Linear(128, 64),
            nn.ReLU(inplace=True),
            batchnorm(64, batchnorm_style),
        )
        self.lstm = nn.LSTM(64, 64, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(64, num_classes)

    def forward(self, sequences: Tensor, lengths: Tensor | None = None) -> Tensor:
        """sequences: (B, T, 1280) zero pre-padded; lengths: (B,) valid frames per clip → logits (B, K).

        Without `lengths`, the leading all-zero frames of each clip are taken as padding (the Keras
        masking rule), so a caller that only pre-pads gets the same answer.
        """
        return self.out(self.dropout(self.embed(sequences, lengths)))

    def embed(self, sequences: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The clip embedding the output layer reads: the LSTM's last state, (B, T, 1280) → (B, 64)."""
        _batch, steps, _ = sequences.shape
        if lengths is None:
            lengths = padded_lengths(sequences)
        lengths = lengths.to(torch.long).cpu()
        if int(lengths.min()) < 1:
            raise ValueError("every clip needs at least one frame (a length of 0 was given)")
        valid = torch.arange(steps).unsqueeze(0) >= (steps - lengths).unsqueeze(1)  # (B, T)
        frames = self.frame(sequences[valid.to(sequences.device)].float())  # (sum(lengths), 64)
        packed = pack_sequence(list(torch.split(frames, lengths.tolist())), enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n: (1, B, 64), in the original batch order
        return h_n[-1]


def build_head(stage: str, num_classes: int, batchnorm_style: str = DEFAULT_BATCHNORM) -> nn.Module:
    """A fresh g() ('ifer') or v() ('vfer') for `num_classes` classes."""
    if stage == "ifer":
        return IFERHead(num_classes, batchnorm_style=batchnorm_style)
    if stage == "vfer":
        return VFERHead(num_classes, batchnorm_style=batchnorm_style)
    raise ValueError(f"unknown training stage {stage!r}: use 'ifer' (g) or 'vfer' (v)")


def padded_lengths(sequences: Tensor) -> Tensor:
    """Valid length of each zero pre-padded sequence: (B, T, D) → (B,), counting from the first non-zero frame."""
    nonzero = sequences.abs().amax(dim=-1) > 0  # (B, T)
    steps = sequences.shape[1]
    first = torch.where(
        nonzero.any(dim=1), nonzero.float().argmax(dim=1), torch.full_like(nonzero[:, 0], steps, dtype=torch.long)
    )
    return (steps - first).cpu()


def pad_sequences(clips: list[Tensor], max_len: int | None = None) -> tuple[Tensor, Tensor]:
    """Zero pre-pad a list of (T_i, D) clips to (B, T, D); returns (batch, lengths).

    Clips longer than `max_len` keep their last `max_len` frames (the end of a clip is where the
    LSTM's last step reads from).
    """
    if not clips:
        raise ValueError("pad_sequences needs at least one clip")
    lengths = [min(len(c), max_len) if max_len else len(c) for c in clips]
    steps = max(lengths)
    batch = clips[0].new_zeros((len(clips), steps, clips[0].shape[-1]))
    for i, (clip, n) in enumerate(zip(clips, lengths)):
        batch[i, steps - n :] = clip[len(clip) - n :]
    return batch, torch.tensor(lengths)


def pad_clips(clips: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """`pad_sequences` of (T_i, 1280) feature arrays, as float32 tensors: the batch v() reads."""
    return pad_sequences([torch.from_numpy(np.asarray(c, dtype=np.float32)) for c in clips])


# ------------------------------------------------------------------------ parameter accounting


@dataclass(frozen=True)
class ParamCount:
    """Parameter counts of one block in both conventions.

    torch_*: PyTorch's view (parameters vs buffers, where num_batches_tracked counts as a buffer
    element). paper_*: Keras' view, as printed in the paper (BatchNorm moving statistics are
    non-trainable weights; an LSTM has one bias vector per gate, PyTorch has two).
    """

    block: str
    num_classes: int
    torch_parameters: int
    torch_buffers: int
    paper_trainable: int
    paper_non_trainable: int
    trained_on_clients: int


def count_parameters(block: str, module: nn.Module, num_classes: int, trained_on_clients: bool) -> ParamCount:
    """Count `module`'s parameters in PyTorch and in the paper's (Keras) convention."""
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    bn_stats = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    )
    lstm_extra_bias = sum(m.bias_hh_l0.numel() for m in module.modules() if isinstance(m, nn.LSTM) and m.bias)
    return ParamCount(
        block=block,
        num_classes=num_classes,
        torch_parameters=params,
        torch_buffers=buffers,
        paper_trainable=params - lstm_extra_bias,
        paper_non_trainable=bn_stats,
        trained_on_clients=params if trained_on_clients else 0,
    )


def parameter_table(class_counts: tuple[int, ...] = (4, 6)) -> list[ParamCount]:
    """Counts for f, g and v for each task size; f does not depend on K."""
    rows = [count_parameters("f", FrameEncoder(), 0, trained_on_clients=False)]
    for k in class_counts:
        rows.append(count_parameters("g", IFERHead(k), k, trained_on_clients=False))
        rows.append(count_parameters("v", VFERHead(k), k, trained_on_clients=True))
    return rows
