"""Where frames come from: video files and cameras, both as RGB frames with their times.

A file's frame times follow from its frame rate; a camera's are read from the clock as frames
arrive (drivers often report no rate, or a wrong one). Both feed the same pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from fedfer.data.faces import native_stderr_caught
from fedfer.data.video import VideoError, find_videos, iter_frames


@dataclass
class FrameSource:
    """(H, W, 3) uint8 RGB frames of one video or camera, in order, and the time of each."""

    name: str  # the file's path, or "camera<N>"
    fps: float  # frames per second of `frames` (0 when unknown)
    frames: Iterator[np.ndarray]
    times: list[float]  # seconds from the start, filled as frames are read

    def time_of(self, index: int) -> float:
        return self.times[index]


def _timed(frames: Iterator[np.ndarray], times: list[float], clock: Callable[[int], float]) -> Iterator[np.ndarray]:
    """Pass `frames` on, appending each one's time `clock(index)` to `times` as it goes."""
    for index, frame in enumerate(frames):
        times.append(clock(index))
        yield frame


def video_source(path: Path, frame_step: int = 1, max_frames: int | None = None) -> FrameSource:
    """Every `frame_step`-th frame of a video file (VideoError when it cannot be opened)."""
    fps, frames = iter_frames(path, frame_step)
    rate = fps / frame_step if fps > 0 else 0.0
    times: list[float] = []
    clock = (lambda i: i / rate) if rate else float  # no rate: the frame number stands in for the time
    return FrameSource(str(path), rate, _timed(islice(frames, max_frames), times, clock), times)


def camera_source(index: int, max_frames: int | None = None, default_fps: float = 30.0) -> FrameSource:
    """Frames of camera `index` (cv2.VideoCapture) until `max_frames` or the camera stops.

    Raises VideoError when no camera opens at `index`, so a machine without one fails at once.
    """
    with native_stderr_caught():  # OpenCV's backends each print their failure; the error below says it once
        capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        capture.release()
        raise VideoError(
            f"no camera at index {index}: cv2.VideoCapture({index}) did not open (none connected, no permission "
            f"for /dev/video{index}, or another program holds it); pass a video file instead"
        )
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0) or default_fps

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    times: list[float] = []
    start = time.monotonic()
    return FrameSource(
        f"camera{index}", fps, _timed(islice(frames(), max_frames), times, lambda _: time.monotonic() - start), times
    )


def video_paths(inputs: list[Path]) -> list[Path]:
    """The video files named by `inputs` (files, or folders searched recursively), in order.

    Clips are named by file stem in the outputs, so two videos with one stem are refused up front.
    """
    paths: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found = find_videos(item)
            if not found:
                raise FileNotFoundError(f"no video files in {item} (looked for .flv, .mp4, .avi, ... recursively)")
            paths += found
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f"{item} is neither a video file nor a folder")
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems:
            raise ValueError(f"{stems[path.stem]} and {path} have the same name; outputs are named by it: rename one")
        stems[path.stem] = path
    return paths
