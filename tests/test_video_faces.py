"""Decoding and face cropping on the real CREMA-D originals (FLV/VP6) and on broken videos."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import DATA

from fedfer.data import faces
from fedfer.data.assets import AssetError
from fedfer.data.faces import (
    CropSettings,
    NoFaceError,
    open_detector,
    resolve_detector,
    square_crop,
    track_faces,
)
from fedfer.data.video import VideoError, iter_frames, read_video

SAMPLES = sorted((DATA / "crema-d-samples").glob("*.flv"))


def write_video(path: Path, frames: list[np.ndarray], fourcc: str = "MJPG", fps: float = 25.0) -> Path:
    """Write RGB frames (or none) with OpenCV; MJPG/AVI also opens when it holds zero frames."""
    height, width = (frames[0].shape[:2]) if frames else (64, 64)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_three_real_crema_d_samples_are_present() -> None:
    assert [p.name for p in SAMPLES] == ["1001_DFA_ANG_XX.flv", "1001_DFA_HAP_XX.flv", "1001_DFA_NEU_XX.flv"]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_crema_d_flv_decodes_to_rgb_frames(path: Path) -> None:
    video = read_video(path)

    assert video.frames.dtype == np.uint8 and video.frames.shape[1:] == (360, 480, 3)
    assert 50 <= len(video.frames) <= 120
    assert video.fps == pytest.approx(29.97, abs=0.01)


def test_blazeface_finds_the_face_in_95_percent_of_crema_d_frames() -> None:
    spec = resolve_detector("mediapipe")
    settings = CropSettings(margin=0.2, image_size=224)

    assert spec.kind == "mediapipe"
    with open_detector(spec) as detector:
        for path in SAMPLES:
            _, frames = iter_frames(path)
            crops, rate = track_faces(frames, detector, settings, source=str(path))
            assert rate >= 0.95, path.name
            assert crops.shape[1:] == (224, 224, 3) and crops.dtype == np.uint8


def test_haar_fallback_also_finds_the_crema_d_face() -> None:
    with open_detector(resolve_detector("haar")) as detector:
        _, frames = iter_frames(SAMPLES[0], frame_step=15)
        boxes = [detector.detect(rgb) for rgb in frames]

    assert sum(b is not None for b in boxes) >= len(boxes) - 1


def test_missing_detector_model_falls_back_to_haar_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unavailable(path: object = None) -> Path:
        raise AssetError("no model here")

    monkeypatch.setattr(faces, "face_detector_model", unavailable)
    with caplog.at_level(logging.WARNING, logger="fedfer.data.faces"):
        spec = resolve_detector("mediapipe")

    assert spec.kind == "haar"
    assert "fedfer models" in caplog.text and "Haar" in caplog.text


def test_missing_file_is_a_video_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.flv"

    with pytest.raises(VideoError, match="nope.flv.*does not exist"):
        iter_frames(missing)


def test_random_bytes_named_mp4_are_a_video_error_naming_it(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4096))

    with pytest.raises(VideoError, match="junk.mp4.*cannot be opened"):
        iter_frames(junk)


def test_zero_frame_video_is_a_video_error_naming_it(tmp_path: Path) -> None:
    empty = write_video(tmp_path / "empty.avi", [])

    with pytest.raises(VideoError, match="empty.avi.*no decodable frame"):
        read_video(empty)


def test_video_without_a_face_raises_no_face(tmp_path: Path) -> None:
    gray = [np.full((120, 160, 3), 40 + 10 * i, np.uint8) for i in range(8)]
    path = write_video(tmp_path / "wall.avi", gray)

    with open_detector(resolve_detector("mediapipe")) as detector, pytest.raises(NoFaceError, match="wall.avi"):
        _, frames = iter_frames(path)
        track_faces(frames, detector, CropSettings(), source=str(path))


class ScriptedDetector:
    """Returns a fixed sequence of boxes, to pin down the gap-filling rule without a model."""

    def __init__(self, boxes: list[tuple[int, int, int, int] | None]) -> None:
        self.boxes = iter(boxes)

    def detect(self, rgb: np.ndarray) -> tuple[int, int, int, int] | None:
        return next(self.boxes)

    def close(self) -> None:
        pass


def test_frames_without_detection_reuse_the_nearest_earlier_box_or_the_first_one() -> None:
    frames = [np.full((100, 100, 3), i * 20, np.uint8) for i in range(5)]
    frames[1][:50, :50] = 255  # marks the first box's region in the first detected frame
    first, second = (0, 0, 50, 50), (50, 50, 50, 50)
    detector = ScriptedDetector([None, first, None, second, None])

    crops, rate = track_faces(frames, detector, CropSettings(margin=0.0, image_size=10))

    assert rate == pytest.approx(2 / 5) and crops.shape == (5, 10, 10, 3)
    expected = [square_crop(f, b, 0.0, 10) for f, b in zip(frames, [first, first, first, second, second])]
    np.testing.assert_array_equal(crops, np.stack(expected))


def test_square_crop_is_shifted_inside_and_zero_padded_beyond_the_image() -> None:
    image = np.full((100, 200, 3), 200, np.uint8)

    inside = square_crop(image, (0, 0, 40, 40), margin=0.25, size=30)  # 60 px square, shifted to (0, 0)
    beyond = square_crop(image, (20, 10, 80, 80), margin=0.5, size=32)  # 160 px square, taller than the image

    assert inside.shape == (30, 30, 3) and (inside == 200).all()
    assert beyond.shape == (32, 32, 3)
    assert (beyond[0] == 0).all() and (beyond[16, 16] == 200).all()
