"""The CREMA-D reader on the real label files reproduces the corpus' documented numbers."""

from __future__ import annotations

import csv
import shutil
import warnings
from collections import Counter
from pathlib import Path

import pytest
from conftest import DATA

from fedfer.data.datasets import EMOTIONS_4, EMOTIONS_6
from fedfer.data.datasets.crema_d import (
    KNOWN_BROKEN,
    SUMMARY_FILE,
    VOTES_FILE,
    BrokenClipWarning,
    label_statistics,
    load_crema_d,
)

ROOT = DATA / "crema-d"


def load(root: Path = ROOT, require_video: bool = False, **kwargs) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BrokenClipWarning)
        return load_crema_d(root, require_video=require_video, **kwargs)


@pytest.fixture(scope="module")
def face() -> list:
    return load(label_mode="face")


@pytest.fixture(scope="module")
def av() -> list:
    return load(label_mode="av")


@pytest.fixture(scope="module")
def labels_csv() -> dict[str, dict[str, str]]:
    with (ROOT / "labels.csv").open(newline="") as handle:
        return {row["clip"]: row for row in csv.DictReader(handle)}


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """The label files copied to a writable directory, for damaging."""
    for name in (VOTES_FILE, SUMMARY_FILE, Path("VideoDemographics.csv")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_corpus_size_and_actors(face: list) -> None:
    genders = {c.actor: c.meta["gender"] for c in face}
    assert len(face) == 7442
    assert len(genders) == 91
    assert Counter(genders.values()) == {"M": 48, "F": 43}


def test_face_plurality_distribution(face: list) -> None:
    stats = label_statistics(face, 6)
    assert stats.counts == {"ANG": 968, "DIS": 1057, "FEA": 822, "HAP": 1266, "NEU": 2076, "SAD": 783}
    assert stats.ties == stats.unlabelled == 470
    assert stats.agree_with_intended == 4931  # 66.3% of all clips


def test_av_ties(av: list) -> None:
    assert label_statistics(av, 6).ties == 420


def test_intended_counts() -> None:
    stats = label_statistics(load(label_mode="intended"), 6)
    assert stats.counts == {"ANG": 1271, "DIS": 1271, "FEA": 1271, "HAP": 1271, "NEU": 1087, "SAD": 1271}
    assert stats.ties == 0


def test_labels_agree_with_labels_csv(face: list, av: list, labels_csv: dict) -> None:
    for clips, column in ((face, "face_plurality"), (av, "av_plurality")):
        for clip in clips[::500]:
            row = labels_csv[clip.clip_id]
            expected = None if ":" in row[column] else EMOTIONS_6.index(row[column])
            assert clip.label == expected, clip.clip_id
            assert clip.actor == row["actor"] and clip.intended == row["intended"]
            assert clip.meta["sentence"] == row["sentence"] and clip.meta["level"] == row["level"]
            assert clip.meta["votes"]["face"] == tuple(int(row[f"face_votes_{e}"]) for e in EMOTIONS_6)


def test_tie_policy_intended_breaks_ties_towards_the_acted_emotion(labels_csv: dict) -> None:
    clips = {c.clip_id: c for c in load(label_mode="face", ties="intended")}
    tied = [row for row in labels_csv.values() if ":" in row["face_plurality"]]
    resolved = [row for row in tied if row["intended"] in row["face_plurality"].split(":")]
    assert label_statistics(clips.values(), 6).unlabelled == len(tied) - len(resolved)
    for row in resolved[:20]:
        assert clips[row["clip"]].label == EMOTIONS_6.index(row["intended"])


def test_four_class_task_unlabels_other_classes_and_restricts_votes(face: list) -> None:
    """Clips whose plurality is DIS or FEA lose their label, not their place: an unlabeled client
    cannot tell them apart, so they stay in its pseudo-labelling pool."""
    clips = load(label_mode="distribution", num_classes=4)
    six = {c.clip_id: c for c in face}
    assert {c.clip_id for c in clips} == set(six)
    assert {EMOTIONS_4[c.label] for c in clips if c.label is not None} == set(EMOTIONS_4)
    for c in clips:
        six_label = six[c.clip_id].label
        if six_label is not None and EMOTIONS_6[six_label] in ("DIS", "FEA"):
            assert c.label is None
        elif six_label is not None:
            assert EMOTIONS_4[c.label] == EMOTIONS_6[six_label]
    clip = clips[0]
    assert clip.votes == tuple(six[clip.clip_id].meta["votes"]["face"][EMOTIONS_6.index(e)] for e in EMOTIONS_4)
    assert label_statistics(clips, 4).counts == {"ANG": 968, "HAP": 1266, "NEU": 2076, "SAD": 783}


def test_known_broken_clips_warn_by_name() -> None:
    with pytest.warns(BrokenClipWarning) as record:
        load_crema_d(ROOT, require_video=False)
    message = str(record[0].message)
    assert all(clip in message for clip in KNOWN_BROKEN)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BrokenClipWarning)
        clips = load_crema_d(ROOT, require_video=False, drop_broken=True)
    assert len(clips) == 7442 - len(KNOWN_BROKEN)


def test_missing_videos_name_the_directory_and_remedy() -> None:
    with pytest.raises(FileNotFoundError, match="VideoFlash.*git lfs clone"):
        load_crema_d(ROOT)


def test_videos_are_found_and_lfs_pointers_reported(corpus_copy: Path) -> None:
    video_dir = corpus_copy / "VideoFlash"
    video_dir.mkdir()
    clip_ids = [c.clip_id for c in load(corpus_copy)]
    for clip_id in clip_ids:
        (video_dir / f"{clip_id}.mp4").write_bytes(b"\0" * 2048)
    clips = load(corpus_copy, require_video=True)
    assert clips[0].path == video_dir / f"{clip_ids[0]}.mp4"
    (video_dir / f"{clip_ids[0]}.mp4").write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:0\n")
    with pytest.raises(ValueError, match="Git LFS pointer"):
        load(corpus_copy, require_video=True)
    (video_dir / f"{clip_ids[0]}.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=f"1 of 7442 clips have no video \\({clip_ids[0]}"):
        load(corpus_copy, require_video=True)


def test_missing_file_names_file_and_columns(corpus_copy: Path) -> None:
    (corpus_copy / "VideoDemographics.csv").unlink()
    with pytest.raises(FileNotFoundError, match="VideoDemographics.csv.*'ActorID', 'Age', 'Sex'"):
        load(corpus_copy)


def test_garbled_header_names_missing_columns(corpus_copy: Path) -> None:
    path = corpus_copy / VOTES_FILE
    path.write_text(path.read_text().replace('"fileName"', '"file"', 1))
    with pytest.raises(ValueError, match="tabulatedVotes.csv.*missing columns 'fileName'"):
        load(corpus_copy)


def test_garbled_value_names_line_and_column(corpus_copy: Path) -> None:
    path = corpus_copy / VOTES_FILE
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace(",0,", ",x,", 1)
    path.write_text("".join(lines))
    with pytest.raises(ValueError, match="tabulatedVotes.csv, line 4: column '.' holds 'x'"):
        load(corpus_copy)


def test_votes_disagreeing_with_summary_are_reported(corpus_copy: Path) -> None:
    path = corpus_copy / SUMMARY_FILE
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"N","92.22"', '"A","92.22"')  # 1001_IEO_NEU_XX: face plurality N
    path.write_text("".join(lines))
    with pytest.raises(ValueError, match="summaryTable.csv, line 2: FaceVote of 1001_IEO_NEU_XX"):
        load(corpus_copy)
