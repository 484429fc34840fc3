"""The AffectNet reader: real columns and codes, class filtering, the paper's protocol, clear errors."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from fedfer.data.datasets import EMOTIONS_4, EMOTIONS_6
from fedfer.data.datasets.affectnet import LISTS_DIR, load_affectnet, read_list


def test_reads_the_synthetic_corpus_and_drops_classes_outside_the_task(tiny_world: Path) -> None:
    root = tiny_world / "affectnet"
    six = read_list(root, "training", 6)
    four = read_list(root, "training", 4)
    rows = (root / LISTS_DIR / "training.csv").read_text().splitlines()[1:]
    codes = Counter(int(r.split(",")[6]) for r in rows)
    assert len(six) == sum(codes[c] for c in (0, 1, 2, 4, 5, 6))  # no Surprise, Contempt, None, ...
    assert len(four) == sum(codes[c] for c in (0, 1, 2, 6))
    assert {EMOTIONS_4[im.label] for im in four} == set(EMOTIONS_4)
    assert all(im.path.is_file() and im.box is not None for im in six)


def test_protocol_caps_classes_splits_80_20_and_tests_on_validation(tiny_world: Path) -> None:
    splits = load_affectnet(tiny_world / "affectnet", num_classes=6, images_per_class=20, seed=1)
    per_class = Counter(im.label for im in splits.train + splits.dev)
    assert max(per_class.values()) <= 20
    assert abs(len(splits.dev) / (len(splits.train) + len(splits.dev)) - 0.2) < 0.05
    assert Counter(EMOTIONS_6[im.label] for im in splits.test) == {
        e: 10 for e in EMOTIONS_6
    }  # balanced, header-less list
    again = load_affectnet(tiny_world / "affectnet", num_classes=6, images_per_class=20, seed=1)
    assert [im.path for im in again.train] == [im.path for im in splits.train]


def test_missing_list_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="training.csv"):
        read_list(tmp_path, "training")


def test_missing_column_is_named(tmp_path: Path) -> None:
    lists = tmp_path / LISTS_DIR
    lists.mkdir()
    (lists / "training.csv").write_text(
        "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,valence,arousal\n"
    )
    with pytest.raises(ValueError, match="expression"):
        read_list(tmp_path, "training")


def test_missing_images_are_reported_with_a_remedy(tiny_world: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_world / "affectnet" / LISTS_DIR, tmp_path / LISTS_DIR)
    with pytest.raises(FileNotFoundError, match="require_images=False"):
        read_list(tmp_path, "training")
    assert read_list(tmp_path, "training", require_images=False)
