"""A subject that holds only raw videos computes its own features, once, on its own machine."""

import shutil

import numpy as np
import pytest
from conftest import DATA

from fedfer.data.datasets import EMOTIONS_6
from fedfer.data.subject import load_subject, write_subject

SAMPLES = DATA / "crema-d-samples"


def test_subject_with_raw_videos_extracts_features_locally(tmp_path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("1001_DFA_ANG_XX.flv", "1001_DFA_HAP_XX.flv"):
        shutil.copy(SAMPLES / name, videos / name)
    clips = [
        ("1001_DFA_ANG_XX", EMOTIONS_6.index("ANG")),
        ("1001_DFA_HAP_XX", EMOTIONS_6.index("HAP")),
        ("1001_DFA_SAD_XX", None),
    ]
    subject_dir = tmp_path / "subject"
    write_subject(
        subject_dir,
        "1001",
        EMOTIONS_6,
        subject_dir / "features",
        clips,
        video_dir=videos,
        feature_config={"image_size": 96, "workers": 0},
    )

    with pytest.warns(UserWarning, match="1 clips have neither features nor a usable video"):
        data = load_subject(subject_dir)  # the SAD clip has no video here
    assert data.clip_ids == ["1001_DFA_ANG_XX", "1001_DFA_HAP_XX"]
    assert all(f.shape[1] == 1280 and f.dtype == np.float16 and len(f) > 50 for f in data.features)
    stamps = {p.name: p.stat().st_mtime_ns for p in (subject_dir / "features").glob("*.npz")}

    with pytest.warns(UserWarning):
        again = load_subject(subject_dir)  # cached: nothing is recomputed
    assert {p.name: p.stat().st_mtime_ns for p in (subject_dir / "features").glob("*.npz")} == stamps
    np.testing.assert_array_equal(again.features[0], data.features[0])


def test_missing_manifest_names_the_directory(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_subject(tmp_path)
