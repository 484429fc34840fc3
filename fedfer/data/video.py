"""Decoding videos into RGB frames with OpenCV (FLV/VP6 originals of CREMA-D, MP4, AVI, ...).

Frames are counted by decoding: FLV containers carry no reliable frame count, and a count from the
header would silently disagree with the feature sequence. The header's count still serves one check: a
file that decodes to clearly fewer frames than it announces was cut short (a partial copy or download)
and is refused rather than used as a shorter clip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# A file decoding to fewer than this share of the frames its header announces is truncated. Header counts
# of FLV files are estimates (duration × fps); CREMA-D's decode to exactly their count.
TRUNCATED_SHARE = 0.9
VIDEO_EXTENSIONS = (".flv", ".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv")


class VideoError(ValueError):
    """A video that cannot be used: missing, unreadable, or without a single decodable frame."""


@dataclass(frozen=True)
class Video:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: float  # frames per second of `frames` (the source rate divided by the frame step)


def iter_frames(path: Path, frame_step: int = 1) -> tuple[float, Iterator[np.ndarray]]:
    """Open `path` and return (source fps, iterator over every `frame_step`-th frame as (H, W, 3) uint8 RGB).

    Missing and unreadable files raise VideoError at once; a video that decodes to no frame raises
    VideoError from the iterator, when that becomes known.
    """
    path = Path(path)
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    if not path.is_file():
        raise VideoError(f"video {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"video {path} cannot be opened by OpenCV (not a video, or a codec this OpenCV build lacks)")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # 0 or negative when the container has none

    def frames() -> Iterator[np.ndarray]:
        index = 0
        try:
            while True:
                if not capture.grab():
                    break
                if index % frame_step == 0:  # skipped frames are decoded but never converted or copied
                    ok, bgr = capture.retrieve()
                    if not ok:
                        break
                    yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                index += 1
        finally:
            capture.release()
        if index == 0:
            raise VideoError(f"video {path} has no decodable frame: copy it again from its source or re-encode it")
        if index < TRUNCATED_SHARE * announced:
            raise VideoError(
                f"video {path} decodes to {index} of the {announced} frames its header announces (truncated or "
                "damaged): copy it again from its source"
            )

    return fps, frames()


def read_video(path: Path, frame_step: int = 1) -> Video:
    """All frames of `path` in memory; see `iter_frames` for the errors."""
    fps, frames = iter_frames(path, frame_step)
    stacked = np.stack(list(frames))
    return Video(frames=stacked, fps=fps / frame_step)


def find_videos(root: Path) -> list[Path]:
    """Video files under `root` (recursive, common extensions, sorted for a stable order)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder {root} does not exist")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
