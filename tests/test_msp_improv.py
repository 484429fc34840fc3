"""The MSP-IMPROV reader: label file, actors S01F..S06M, 4 classes, clear errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fedfer.data.datasets.msp_improv import gender_of, load_msp_improv


def test_reads_the_synthetic_corpus(tiny_world: Path) -> None:
    clips = load_msp_improv(tiny_world / "msp_improv")
    assert len(clips) == 48
    actors = Counter(c.actor for c in clips)
    assert sorted(actors) == [f"S{s:02d}{g}" for s in range(1, 7) for g in "FM"]
    assert {gender_of(a) for a in actors} == {"F", "M"}
    assert all(c.path.is_file() for c in clips)
    labelled = [c for c in clips if c.label is not None]
    assert labelled and all(0 <= c.label < 4 for c in labelled)
    assert all(c.votes is not None and sum(c.votes) >= 5 for c in clips)


def test_missing_label_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Evalution.txt"):
        load_msp_improv(tmp_path)


def test_bad_clip_name_is_reported(tmp_path: Path) -> None:
    (tmp_path / "Evalution.txt").write_text("UTD-IMPROV-whatever.avi; A; A:3.0; V:2.0; D:3.0;\n")
    with pytest.raises(ValueError, match="naming"):
        load_msp_improv(tmp_path)


def test_missing_videos_are_reported_unless_labels_only(tmp_path: Path) -> None:
    (tmp_path / "Evalution.txt").write_text(
        "UTD-IMPROV-S01A-F01-R-FM01.avi; A; A:3.0; V:2.0; D:3.0;\nrater01; Angry; A:3.0; V:2.0; D:3.0;\n"
    )
    with pytest.raises(FileNotFoundError, match="require_video=False"):
        load_msp_improv(tmp_path)
    (clip,) = load_msp_improv(tmp_path, require_video=False)
    assert clip.actor == "S01F" and clip.label == 0 and clip.votes == (1, 0, 0, 0) and clip.intended == "ANG"
