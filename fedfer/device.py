"""Where the torch work runs: one rule for f() and the heads, so a GPU user never waits on the CPU.

"auto" takes the first CUDA device when PyTorch sees one, else the CPU. Asking for "cuda" on a
machine without one is an error naming the remedy, never a silent fall-back to a slower device.
"""

from __future__ import annotations

import torch

from fedfer.config import DEVICES


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device that `name` ("auto", "cpu", "cuda" or "cuda:N") stands for on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} asked for, but this PyTorch ({torch.__version__}) sees no CUDA GPU; "
                "use --device cpu (or auto), or install a CUDA build of PyTorch on a machine with a GPU"
            )
        return torch.device(name)
    raise ValueError(f"unknown device {name!r}: use one of {', '.join(DEVICES)} (or cuda:N)")
