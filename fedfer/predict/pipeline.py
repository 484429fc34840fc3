"""Frame → face → f() → one v() step: running class probabilities, one frame at a time.

The same `FaceToEmotion` module runs in PyTorch (`TorchEngine`) and, exported, in ONNX Runtime
(`fedfer.predict.exported.OnnxEngine`); an engine only carries the LSTM state from frame to frame.
Faces are found and cropped exactly as for the feature cache (`fedfer.data.faces`), and f()'s
output is rounded to float16 as the cache stores it, so v() sees what it was trained on and a clip's
streamed prediction equals the batch v() on its cached features.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from fedfer.config import FeatureConfig
from fedfer.data.faces import Box, CropSettings, FaceDetector, iter_tracked_faces
from fedfer.model.streaming import StreamingVFER
from fedfer.predict.choice import LoadedModel
from fedfer.predict.sources import FrameSource


class FaceToEmotion(nn.Module):
    """(crop (1, S, S, 3) uint8 RGB, h (1, 64), c (1, 64)) → (probabilities (1, K), h, c, features (1, 1280))."""

    def __init__(self, model: LoadedModel) -> None:
        super().__init__()
        self.preprocess = model.backbone.preprocessor()
        self.encoder = model.backbone.encoder
        self.v = StreamingVFER(model.v)
        self.eval()

    def forward(self, crop: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x = self.preprocess(crop).contiguous(memory_format=torch.channels_last)  # (1, 3, S, S)
        features = self.encoder(x).half().float()  # (1, 1280), rounded as the feature cache stores it
        probabilities, h, c = self.v(features, h, c)
        return probabilities, h, c, features


class Engine(ABC):
    """Runs one frame at a time and carries v()'s LSTM state; `reset` starts a new clip."""

    classes: tuple[str, ...]
    faces: FeatureConfig  # how faces must be found and cropped for this model
    state_size: int

    @property
    def crop(self) -> CropSettings:
        return CropSettings(margin=self.faces.margin, image_size=self.faces.image_size)

    def reset(self) -> None:
        self._h = np.zeros((1, self.state_size), np.float32)
        self._c = np.zeros((1, self.state_size), np.float32)

    @property
    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """v()'s LSTM state (h, c), each (1, 64), after the frames stepped so far."""
        return self._h, self._c

    def step(self, crop: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 RGB face crop → (K,) running probabilities of the clip so far."""
        probabilities, self._h, self._c = self._run(np.ascontiguousarray(crop[None]), self._h, self._c)
        return probabilities[0]

    @abstractmethod
    def _run(self, crop: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step: (crop (1, S, S, 3) uint8, h (1, 64), c (1, 64)) → (probabilities (1, K), h, c)."""


class TorchEngine(Engine):
    """`FaceToEmotion` in PyTorch, eval mode, on `threads` intra-op threads."""

    def __init__(self, model: LoadedModel, threads: int = 1) -> None:
        torch.set_num_threads(threads)
        self.module = FaceToEmotion(model)
        self.classes = model.classes
        self.faces = model.choice.features
        self.state_size = self.module.v.state_size
        self.reset()

    def _run(self, crop: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.inference_mode():
            probabilities, h_t, c_t, _ = self.module(torch.from_numpy(crop), torch.from_numpy(h), torch.from_numpy(c))
        return probabilities.numpy(), h_t.numpy(), c_t.numpy()


@dataclass(frozen=True)
class FramePrediction:
    """v()'s running prediction after one frame of a source."""

    index: int  # frame number among the frames the source gave
    time_s: float  # seconds from the start of the source
    box: Box  # the face box the crop was cut around (x, y, width, height), pixels
    detected: bool  # False: the box was carried over from another frame
    probabilities: np.ndarray  # (K,) running class probabilities of the clip so far
    frame: np.ndarray  # (H, W, 3) uint8 RGB, for an annotated video


def stream_predictions(
    source: FrameSource, detector: FaceDetector, engine: Engine, hold: int | None = None
) -> Iterator[FramePrediction]:
    """Predict along `source`, one v() step per frame with a face; the last item holds the clip's prediction.

    `hold`: frames kept back before the first face (see `iter_tracked_faces`); a camera passes 0.
    Raises NoFaceError when no frame has a face.
    """
    engine.reset()
    for tracked in iter_tracked_faces(source.frames, detector, engine.crop, source.name, hold):
        yield FramePrediction(
            tracked.index,
            source.time_of(tracked.index),
            tracked.box,
            tracked.detected,
            engine.step(tracked.crop),
            tracked.frame,
        )
