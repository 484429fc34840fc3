"""f() and a head on a CUDA GPU, through the same code as on the CPU (`fedfer.device`, `fedfer.data.runtimes`).

Skipped where PyTorch sees no GPU. Needs torch, torchvision, numpy and OpenCV only (no Flower, no
MediaPipe: the crops are centre squares of the real CREMA-D sample frames), plus the offline backbone in
$FEDFER_HOME/models (or the internet once); the head test also needs tqdm and scikit-learn.

    python -m pytest -q tests/test_cuda.py
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import DATA

from fedfer.data.backbone import load_frame_encoder
from fedfer.data.runtimes import storage_step
from fedfer.data.video import read_video
from fedfer.device import resolve_device

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU that PyTorch can see (torch.cuda.is_available() is False)"
)


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """(24, 224, 224, 3) uint8: centre squares of real CREMA-D frames, resized as face crops are."""
    frames = read_video(sorted((DATA / "crema-d-samples").glob("*.flv"))[0]).frames[::4][:24]  # (24, 360, 480, 3)
    height, width = frames.shape[1:3]
    left = (width - height) // 2
    return np.stack([cv2.resize(f[:, left : left + height], (224, 224), interpolation=cv2.INTER_AREA) for f in frames])


def test_auto_device_is_the_gpu() -> None:
    assert resolve_device("auto").type == "cuda"
    assert load_frame_encoder("offline").on().runtime.name == "torch-cuda-fp32"  # auto: torch on the GPU


def test_f_on_cuda_stores_the_cpu_numbers(crops: np.ndarray) -> None:
    backbone = load_frame_encoder("offline")
    cpu = backbone.encode(crops, 8).astype(np.float32)  # (24, 1280)
    gpu_backbone = backbone.on("torch", "fp32", "cuda")
    gpu = gpu_backbone.encode(crops, 8).astype(np.float32)
    assert next(gpu_backbone.runtime.encoder.parameters()).is_cuda
    assert next(backbone.encoder.parameters()).device.type == "cpu"  # the CPU copy is left where it was
    assert np.abs(gpu - cpu).max() <= storage_step(cpu)  # same fingerprint: same stored numbers up to a rounding
    assert np.isfinite(gpu).all() and gpu.std() > 0.1


def test_bf16_on_cuda_is_close_but_its_own(crops: np.ndarray) -> None:
    backbone = load_frame_encoder("offline")
    cpu = backbone.encode(crops, 8).astype(np.float32)
    bf16 = backbone.on("torch", "bf16", "cuda").encode(crops, 8).astype(np.float32)
    cosine = (cpu * bf16).sum(1) / np.linalg.norm(cpu, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cosine.min() > 0.99
    assert np.abs(bf16 - cpu).max() > storage_step(cpu)  # why bf16 features get their own fingerprint


def test_head_trains_on_cuda_and_comes_back() -> None:
    pytest.importorskip("tqdm", reason="fedfer.model.training needs tqdm")
    pytest.importorskip("sklearn", reason="fedfer.model.inference needs scikit-learn")
    from fedfer.config import TrainConfig
    from fedfer.model.heads import build_head
    from fedfer.model.inference import predict_proba
    from fedfer.model.training import LabelledSet, fit

    rng = np.random.default_rng(0)
    labels = np.arange(24) % 4
    clips = [(rng.normal(size=(10 + i % 5, 1280)) + labels[i]).astype(np.float16) for i in range(24)]  # (T_i, 1280)
    v = build_head("vfer", 4)
    before = [p.detach().clone() for p in v.parameters()]
    history = fit(
        v, LabelledSet(clips, labels), None, TrainConfig(num_classes=4, epochs=3), progress=False, device="cuda"
    )
    assert next(v.parameters()).device.type == "cpu"  # returned where it started
    assert all(np.isfinite(history.train_loss)) and history.train_loss[-1] < history.train_loss[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, v.parameters()))
    probabilities = predict_proba(v.to("cuda"), clips)  # inference on the GPU, numbers back on the CPU
    assert probabilities.shape == (24, 4) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
