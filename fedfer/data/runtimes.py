"""The engines that run f() on uint8 face crops: eager PyTorch (CPU or CUDA, float32 or bfloat16),
ONNX Runtime and OpenVINO (CPU, float32, on the same graph exported once and cached under $FEDFER_HOME).

Every engine maps (N, S, S, 3) uint8 RGB crops to (N, 1280) float32 pooled features and normalises
inside, so `Backbone.encode` is the same call whichever runs. Which numbers they give:

* all float32 engines agree to within the float16 rounding of the stored features (`storage_step`; measured by
  `simulations/bench_features.py`, tested in tests/test_runtimes.py): they share one cache fingerprint;
  on CUDA, TF32 is switched off for the convolutions so that float32 means float32;
* bfloat16 (torch's autocast) differs by up to a few percent of a feature's value (cosine ≥ 0.998 to
  float32): it gets its own fingerprint, so its features never mix with float32 ones.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from fedfer.config import BACKENDS, PRECISIONS
from fedfer.data.assets import models_dir
from fedfer.device import resolve_device
from fedfer.graphs import onnx_bytes, ort_session
from fedfer.io import atomic_write_bytes

GRAPH_INPUT, GRAPH_OUTPUT = "face", "features"
GRAPH_VERSION = 1  # bump when the exported graph changes, so cached graphs are exported again


class FrameRuntime(Protocol):
    """f() on uint8 crops: (N, S, S, 3) → (N, 1280) float32."""

    name: str  # e.g. "torch-cuda-bf16", written into each feature file's meta
    precision: str  # one of PRECISIONS: the part of the engine that changes the numbers

    def __call__(self, crops: np.ndarray) -> np.ndarray: ...


class TorchRuntime:
    """Eager PyTorch: channels_last, inference mode, bfloat16 through autocast when asked."""

    def __init__(self, encoder: nn.Module, preprocess: nn.Module, device: torch.device, precision: str) -> None:
        if device.type != "cpu":  # the CPU copy stays as it is: exports and the predict pipeline use it
            encoder, preprocess = copy.deepcopy(encoder).to(device), copy.deepcopy(preprocess).to(device)
        self.encoder, self.preprocess, self.device, self.precision = encoder, preprocess, device, precision
        self.name = f"torch-{device.type}-{precision}"

    def _numerics(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if self.device.type == "cuda":  # cuDNN would otherwise run float32 convolutions in TF32
            return torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False, allow_tf32=False)
        return contextlib.nullcontext()

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        # uint8 crosses to the device (a quarter of float32's bytes); normalisation runs there
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device, non_blocking=True)
        with torch.inference_mode(), self._numerics():
            x = self.preprocess(x).contiguous(memory_format=torch.channels_last)  # (N, 3, S, S)
            return self.encoder(x).float().cpu().numpy()


class _FaceToFeatures(nn.Module):
    """What the exported graph computes: uint8 crops → normalised → f() → pooled features."""

    def __init__(self, preprocess: nn.Module, encoder: nn.Module) -> None:
        super().__init__()
        self.preprocess, self.encoder = preprocess, encoder

    def forward(self, face: Tensor) -> Tensor:
        return self.encoder(self.preprocess(face))


class GraphRuntime:
    """An exported f() graph, one per crop size (static spatial size, dynamic batch), opened by `open_graph`.

    The graph is exported on first use and kept as
    $FEDFER_HOME/models/graphs/f-<weights sha256[:16]>-<S>px-v<GRAPH_VERSION>-torch<version>.onnx."""

    def __init__(
        self,
        name: str,
        encoder: nn.Module,
        preprocess: nn.Module,
        weights_sha256: str,
        open_graph: Callable[[Path], Callable[[np.ndarray], np.ndarray]],
    ) -> None:
        self.name, self.precision = name, "fp32"
        self._module = _FaceToFeatures(preprocess, encoder).eval()
        self._sha = weights_sha256
        self._open = open_graph
        self._graphs: dict[int, Callable[[np.ndarray], np.ndarray]] = {}

    def graph_path(self, size: int) -> Path:
        version = torch.__version__.split("+")[0]
        return models_dir() / "graphs" / f"f-{self._sha[:16]}-{size}px-v{GRAPH_VERSION}-torch{version}.onnx"

    def _graph(self, size: int) -> Callable[[np.ndarray], np.ndarray]:
        if size not in self._graphs:
            path = self.graph_path(size)
            if not path.is_file():
                batch = torch.export.Dim("batch", min=1)
                face = torch.zeros(2, size, size, 3, dtype=torch.uint8)
                graph = onnx_bytes(
                    self._module, (face,), ([GRAPH_INPUT], [GRAPH_OUTPUT]), dynamic={GRAPH_INPUT: {0: batch}}
                )
                atomic_write_bytes(path, graph)
            self._graphs[size] = self._open(path)
        return self._graphs[size]

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self._graph(crops.shape[1])(np.ascontiguousarray(crops))


def storage_step(reference: np.ndarray) -> float:
    """The float16 rounding step at the largest value of `reference` features: two float32 engines whose
    features differ by no more than this store the same numbers up to one rounding, and share a fingerprint."""
    return float(np.spacing(np.float16(np.abs(reference).max())))


def _onnxruntime(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    session = ort_session(path, torch.get_num_threads())
    return lambda crops: session.run(None, {GRAPH_INPUT: crops})[0]


def _openvino(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import openvino as ov

    compiled = ov.Core().compile_model(
        str(path), "CPU", {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "INFERENCE_PRECISION_HINT": "f32"}
    )
    return lambda crops: compiled(crops)[0]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose_backend(backend: str, precision: str, device: torch.device) -> str:
    """The engine `backend` names here; "auto" is the fastest float32 one measured on CPUs (ONNX Runtime,
    when installed), eager PyTorch on a GPU or for bfloat16 (which only PyTorch runs)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown f() backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown f() precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if backend == "auto":
        cpu_graph = device.type == "cpu" and precision == "fp32" and _installed("onnxruntime")
        return "onnxruntime" if cpu_graph else "torch"
    if backend != "torch":
        if device.type != "cpu" or precision != "fp32":
            raise ValueError(
                f"--backend {backend} runs f() in float32 on the CPU only (asked: {precision} on {device}); "
                "use --backend torch for bf16 or a GPU, or --device cpu --precision fp32"
            )
        if not _installed(backend):
            raise ValueError(f"--backend {backend} needs the {backend} package: pip install {backend}")
    return backend


def build_runtime(
    encoder: nn.Module,
    preprocess: nn.Module,
    weights_sha256: str,
    backend: str = "auto",
    precision: str = "fp32",
    device: str = "auto",
) -> FrameRuntime:
    """The f() engine for these settings (see `choose_backend`); errors name the bad value and the remedy."""
    where = resolve_device(device)
    chosen = choose_backend(backend, precision, where)
    if chosen == "torch":
        return TorchRuntime(encoder, preprocess, where, precision)
    opener = _onnxruntime if chosen == "onnxruntime" else _openvino
    return GraphRuntime(f"{chosen}-cpu-fp32", encoder, preprocess, weights_sha256, opener)
