"""The head both trivial apps share: v()'s shape (per-frame dense layers, an LSTM(64), the classes),
built from plain PyTorch so that the floor does not depend on fedfer's code."""

import torch
from torch import nn

FEATURES, CLASSES = 1280, 6


class Head(nn.Module):
    """(B, T, 1280) → (B, 6): dense layers per frame, LSTM(64) over the clip; v()'s layers, so v()'s
    208,838 parameters and 2,944 statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.frame = nn.Sequential(
            nn.BatchNorm1d(FEATURES),
            nn.Linear(FEATURES, 128),
            nn.ReLU(),
            nn.BatchNorm1d(128),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.BatchNorm1d(64),
        )
        self.lstm = nn.LSTM(64, 64, batch_first=True)
        self.out = nn.Linear(64, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.frame(x.reshape(b * t, d)).reshape(b, t, -1)
        return self.out(self.lstm(h)[0][:, -1])


def state(head: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in head.state_dict().items() if not k.endswith("num_batches_tracked")}
