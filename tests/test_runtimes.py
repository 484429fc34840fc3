"""f()'s engines on the real CREMA-D samples: which numbers each gives, which share the feature cache, bad settings."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DATA

from fedfer.config import FeatureConfig
from fedfer.data.backbone import load_frame_encoder
from fedfer.data.extract import SUMMARY_FILE, extract_video_features
from fedfer.data.runtimes import GraphRuntime, storage_step
from fedfer.data.store import FeatureStore
from fedfer.data.video import read_video

SAMPLE = sorted((DATA / "crema-d-samples").glob("*.flv"))[0]


def centre_crops(size: int) -> np.ndarray:
    """(16, size, size, 3) uint8 centre squares of real frames (no detector needed)."""
    import cv2

    frames = read_video(SAMPLE).frames[::4][:16]  # (16, 360, 480, 3)
    left = (frames.shape[2] - frames.shape[1]) // 2
    squares = frames[:, :, left : left + frames.shape[1]]
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in squares])


def test_float32_engines_store_the_same_numbers_and_bf16_does_not() -> None:
    backbone = load_frame_encoder("offline")
    crops = centre_crops(112)
    reference = backbone.encode(crops, 8).astype(np.float32)  # eager PyTorch float32, (16, 1280)
    ort = backbone.on("onnxruntime", "fp32", "cpu")
    assert isinstance(ort.runtime, GraphRuntime) and ort.runtime.name == "onnxruntime-cpu-fp32"
    graph = ort.encode(crops, 5).astype(np.float32)  # a batch size the export did not see
    assert ort.runtime.graph_path(112).is_file()  # exported once, kept under $FEDFER_HOME
    assert np.abs(graph - reference).max() <= storage_step(reference)
    bf16 = backbone.on("torch", "bf16", "cpu").encode(crops, 8).astype(np.float32)
    cosine = (bf16 * reference).sum(1) / np.linalg.norm(bf16, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() > 0.99
    assert np.abs(bf16 - reference).max() > storage_step(reference)


def statuses(out: Path) -> list[str]:
    with open(out / SUMMARY_FILE, newline="") as fh:
        return [row["reason"] for row in csv.DictReader(fh)]


def test_an_engine_switch_keeps_the_cache_only_when_the_numbers_stay(tmp_path: Path) -> None:
    fast = FeatureConfig(image_size=112, frame_step=6, workers=0, backend="torch", device="cpu")
    out = tmp_path / "cache"
    store: FeatureStore = extract_video_features([SAMPLE], out, fast, progress=False)
    first = store.load(SAMPLE.stem).astype(np.float32)
    assert store.meta(SAMPLE.stem)["engine"] == "torch-cpu-fp32"

    extract_video_features([SAMPLE], out, FeatureConfig(**{**vars(fast), "backend": "onnxruntime"}), progress=False)
    assert statuses(out) == ["cached"]  # float32 engines share the fingerprint: nothing recomputed
    assert store.meta(SAMPLE.stem)["engine"] == "torch-cpu-fp32"

    extract_video_features([SAMPLE], out, FeatureConfig(**{**vars(fast), "precision": "bf16"}), progress=False)
    assert statuses(out) == [""]  # recomputed
    meta = store.meta(SAMPLE.stem)
    assert meta["engine"] == "torch-cpu-bf16" and meta["precision"] == "bf16"
    bf16 = store.load(SAMPLE.stem).astype(np.float32)
    assert bf16.shape == first.shape and np.abs(bf16 - first).max() > storage_step(first)


def test_feature_folders_keep_their_names_for_float32_engines() -> None:
    base = FeatureConfig()
    assert FeatureConfig(backend="torch", device="cpu", batch_size=32).cache_settings() == base.cache_settings()
    assert "precision" not in base.cache_settings()
    assert FeatureConfig(precision="bf16").cache_settings() != base.cache_settings()


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"backend": "tensorrt"}, "backend must be one of"),
        ({"precision": "fp8"}, "precision must be one of"),
        ({"device": "tpu"}, "device must be one of"),
    ],
)
def test_unknown_engine_settings_are_named(settings: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        FeatureConfig(**settings)


def test_impossible_engine_combinations_name_the_remedy() -> None:
    backbone = load_frame_encoder("offline")
    with pytest.raises(ValueError, match="use --backend torch for bf16"):
        backbone.on("onnxruntime", "bf16", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU; use --device cpu"):
            backbone.on("torch", "fp32", "cuda")
    if importlib.util.find_spec("openvino") is None:
        with pytest.raises(ValueError, match="pip install openvino"):
            backbone.on("openvino", "fp32", "cpu")
