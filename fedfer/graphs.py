"""Torch modules as ONNX graphs, and ONNX Runtime sessions to run them: shared by the device export
(`fedfer.predict.exported`) and the ONNX Runtime backend of f() (`fedfer.data.runtimes`)."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

from torch import Tensor, nn


def onnx_bytes(
    module: nn.Module, inputs: tuple[Tensor, ...], names: tuple[list[str], list[str]], dynamic: dict | None = None
) -> bytes:
    """`module` as a serialized ONNX model, through PyTorch's torch.export-based exporter."""
    import torch

    module.eval()
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on its own internals
            program = torch.onnx.export(
                module,
                inputs,
                input_names=names[0],
                output_names=names[1],
                dynamic_shapes=dynamic,
                dynamo=True,
                verbose=False,
            )
    finally:
        quiet.setLevel(level)
    buffer = io.BytesIO()
    program.save(buffer)
    return buffer.getvalue()


def ort_session(path: Path, threads: int):
    """An ONNX Runtime CPU session on `threads` intra-op threads (no inter-op pool: the graphs are sequential)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
