"""Face-crop clips for networks trained end to end on pixels (seed 004's R(2+1)D): cached once, sampled per batch.

f()+v() reads cached MobileNetV2 features; a network that trains its own encoder reads the face crops
themselves. Each video's per-frame crops come from the same detector, tracking and margin as the
feature cache (`fedfer.data.faces`) and are stored as `<clip_id>.npz` holding `crops` (T, S, S, 3)
uint8, in a folder named after the crop size, margin and detector. Decoding and detection are the
expensive part and run once; the frame sampling, which the paper draws at random, runs per batch.

Clip sampling (seed 004): T = 16 frames of 112 × 112 crops. Training draws the T frames at random
(without repeats, kept in time order); evaluation takes T frames evenly spaced over the clip, so a
clip always gets the same score. A clip shorter than T repeats frames (evenly spaced indices) instead
of padding with black frames, which the network would take for content.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from fedfer.data.extract import MIN_TASKS_PER_WORKER
from fedfer.data.faces import CropSettings, DetectorPool, resolve_detector, try_video_faces
from fedfer.data.store import npz_bytes
from fedfer.io import atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipSampling:
    """What one clip looks like to the network."""

    frames: int = 16  # T, frames per clip (seed 004)
    size: int = 112  # H = W, crop side in pixels (seed 004)

    def __post_init__(self) -> None:
        if self.frames < 1 or self.size < 16:
            raise ValueError(f"a clip needs frames >= 1 and size >= 16 pixels; got {self}")


def frame_indices(length: int, frames: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """`frames` indices into a clip of `length` frames, in time order: (frames,) int64.

    rng: draw them at random without repeats (training); None: evenly spaced (evaluation). Clips
    shorter than `frames` get evenly spaced indices with repeats either way.
    """
    if length < 1:
        raise ValueError(f"a clip needs at least one frame, got {length}")
    if rng is None or length <= frames:
        return np.linspace(0, length - 1, frames).round().astype(np.int64)
    return np.sort(rng.choice(length, size=frames, replace=False)).astype(np.int64)


def extract_face_cubes(
    videos: Sequence[Path],
    cache_root: Path,
    size: int = 112,
    margin: float = 0.2,
    detector: str = "mediapipe",
    workers: int = 2,
    progress: bool = True,
) -> dict[str, Path]:
    """Cache every video's face crops at `size` pixels; returns {clip id: .npz path} of the usable ones.

    Clips already in the cache are kept. A video that cannot be decoded or shows no face is logged and
    left out of the result, as the feature cache leaves it out of its store.
    """
    spec = resolve_detector(detector)
    folder = Path(cache_root) / f"{size}px-margin{margin}-{spec.name}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {Path(v).stem: Path(v) for v in videos}
    todo = [(clip_id, path) for clip_id, path in paths.items() if not (folder / f"{clip_id}.npz").is_file()]
    crop = CropSettings(margin=margin, image_size=size)
    pool = DetectorPool(spec, min(workers, os.cpu_count() or 1, len(todo) // MIN_TASKS_PER_WORKER))
    results = pool.map(try_video_faces, ((path, crop) for _, path in todo))
    for (clip_id, path), result in tqdm(zip(todo, results), total=len(todo), disable=not progress, desc="faces"):
        if isinstance(result, str):
            log.warning("skipped %s: %s", path, result)
            continue
        atomic_write_bytes(folder / f"{clip_id}.npz", npz_bytes(crops=result.crops))
    return {clip_id: folder / f"{clip_id}.npz" for clip_id in paths if (folder / f"{clip_id}.npz").is_file()}


def face_frames(
    videos: Sequence[Path], crop: CropSettings, per_clip: int, detector: str = "mediapipe", min_confidence: float = 0.5
) -> np.ndarray:
    """`per_clip` evenly spaced face crops of each video, in this process: (N, S, S, 3) uint8 RGB.

    What a subject's device trains f()'s last blocks on (`fedfer.model.contrastive`): the same detector,
    tracking and crop as its features, a few frames per clip (neighbouring frames add little). A video
    that cannot be decoded or shows no face is logged and left out."""
    pool = DetectorPool(resolve_detector(detector, min_confidence), workers=0)
    kept = []
    for path, result in zip(videos, pool.map(try_video_faces, ((Path(v), crop) for v in videos))):
        if isinstance(result, str):
            log.warning("skipped %s: %s", path, result)
            continue
        kept.append(result.crops[frame_indices(len(result.crops), per_clip)])
    if not kept:
        raise ValueError(f"no face in any of the {len(videos)} videos (first: {videos[0] if videos else None})")
    return np.concatenate(kept)


@dataclass
class FaceClips:
    """Labelled clips in memory: per-clip face crops and class indices."""

    crops: list[np.ndarray]  # each (T_i, S, S, 3) uint8 RGB
    labels: np.ndarray  # (N,) int64

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.crops) != len(self.labels) or not len(self.labels):
            raise ValueError(f"need as many clips as labels, at least one: {len(self.crops)} and {len(self.labels)}")

    @classmethod
    def load(cls, paths: Sequence[Path], labels: Sequence[int], size: int) -> FaceClips:
        """Read cached crops, resized to `size` pixels where the cache holds another size."""

        def resized(crops: np.ndarray) -> np.ndarray:
            if crops.shape[1] == size:
                return crops
            return np.stack([cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA) for frame in crops])

        loaded = []
        for path in paths:
            with np.load(path) as data:
                loaded.append(resized(data["crops"]))
        return cls(loaded, np.asarray(labels))

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: Sequence[int], frames: int, rng: np.random.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Clips `index` as the network's input (B, 3, T, S, S) float in [0, 1], and their labels (B,)."""
        cubes = np.stack([self.crops[i][frame_indices(len(self.crops[i]), frames, rng)] for i in index])
        clips = torch.from_numpy(cubes).permute(0, 4, 1, 2, 3).float().div_(255.0)  # (B, 3, T, S, S)
        return clips, torch.from_numpy(self.labels[list(index)])
