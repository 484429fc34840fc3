"""v() one frame at a time: the per-frame layers and one LSTM step, with the LSTM state carried.

A live prediction cannot rerun the LSTM over the whole clip at every new frame. `StreamingVFER`
takes the same weights as a `VFERHead` and advances its LSTM by one step per frame; after a clip's
last frame its output equals the batch v() on that clip (tested to float tolerance, also against
zero pre-padded batches), because the batch v() already never lets padding into its computation:
the per-frame layers see only valid frames and the packed LSTM starts from a zero state at the
clip's first valid frame, exactly where a stream starts.

Eval mode only: BatchNorm uses its running statistics and dropout is the identity, as in inference.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from fedfer.data.encoder import FEATURE_DIM
from fedfer.model.heads import VFERHead


class StreamingVFER(nn.Module):
    """v() as a step function: (features (B, 1280), h (B, 64), c (B, 64)) → (probabilities (B, K), h, c).

    The probabilities after frame t are v()'s prediction for the clip made of frames 1..t (its
    "running" prediction); after the last frame they are the clip's prediction.
    """

    def __init__(self, head: VFERHead) -> None:
        super().__init__()
        head = copy.deepcopy(head).eval()  # the caller's head keeps its own mode
        self.frame = head.frame
        self.lstm = head.lstm
        self.out = head.out
        self.requires_grad_(False)
        self.eval()

    @property
    def state_size(self) -> int:
        return self.lstm.hidden_size

    @property
    def num_classes(self) -> int:
        return self.out.out_features

    def initial_state(self, batch: int = 1) -> tuple[Tensor, Tensor]:
        """The zero (h, c), each (batch, 64): the state the packed LSTM starts every clip from."""
        zeros = torch.zeros(batch, self.state_size)
        return zeros, zeros.clone()

    def train(self, mode: bool = True) -> StreamingVFER:
        if mode:
            raise RuntimeError("StreamingVFER runs in eval mode only; train the VFERHead it was built from")
        return super().train(False)

    def forward(self, features: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if features.shape[-1] != FEATURE_DIM:
            raise ValueError(f"expected features of shape (B, {FEATURE_DIM}), got {tuple(features.shape)}")
        x = self.frame(features.float())  # (B, 64)
        _, (h_n, c_n) = self.lstm(x.unsqueeze(1), (h.unsqueeze(0), c.unsqueeze(0)))  # each (1, B, 64)
        probabilities = torch.softmax(self.out(h_n[0]), dim=-1)  # (B, K)
        return probabilities, h_n[0], c_n[0]
