"""Metrics agree with hand-computed values, including classes absent from truth or predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedfer.evaluation.metrics import (
    evaluate_predictions,
    markdown_table,
    plot_confusion,
)
from fedfer.io import atomic_write_json

CLASSES = ("ANG", "HAP", "NEU", "SAD")
# NEU (2) is never predicted; SAD (3) never occurs in the truth.
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 3, 1, 0, 0]


@pytest.fixture(scope="module")
def report():
    return evaluate_predictions(Y_TRUE, Y_PRED, CLASSES)


def test_per_class_scores_by_hand(report) -> None:
    # ANG: 2 of 4 predictions right, 2 of 3 found; HAP: 1 of 1 right, 1 of 2 found; NEU, SAD: 0.
    assert report.precision == pytest.approx((1 / 2, 1.0, 0.0, 0.0))
    assert report.recall == pytest.approx((2 / 3, 1 / 2, 0.0, 0.0))
    assert report.f1 == pytest.approx((4 / 7, 2 / 3, 0.0, 0.0))
    assert report.support == (3, 2, 1, 0)
    assert report.confusion == ((2, 0, 0, 1), (1, 1, 0, 0), (1, 0, 0, 0), (0, 0, 0, 0))


def test_means_uar_war_by_hand(report) -> None:
    assert report.macro == pytest.approx((3 / 8, 7 / 24, 13 / 42))
    assert report.micro == pytest.approx((1 / 2, 1 / 2, 1 / 2))
    assert report.weighted == pytest.approx((7 / 12, 1 / 2, 32 / 63))
    assert report.uar == pytest.approx(7 / 24)
    assert report.war == pytest.approx(1 / 2)
    assert report.macro_f1 == pytest.approx(13 / 42) and report.micro_f1 == pytest.approx(1 / 2)


def test_report_round_trips_through_json(tmp_path: Path, report) -> None:
    path = atomic_write_json(tmp_path / "out" / "report.json", report.to_dict())
    loaded = json.loads(path.read_text())
    assert loaded["uar"] == pytest.approx(7 / 24) and loaded["n"] == 6
    assert loaded["confusion"][0] == [2, 0, 0, 1]


def test_bad_labels_are_rejected() -> None:
    with pytest.raises(ValueError, match="class indices 0..3"):
        evaluate_predictions([0, 4], [0, 1], CLASSES)
    with pytest.raises(ValueError, match="equally long"):
        evaluate_predictions([0, 1], [0], CLASSES)


def test_markdown_table_has_class_and_mean_rows_beside_the_paper(report) -> None:
    table = markdown_table({"Before": report, "After": report}, paper={"Before": {"ANG": (45.5, 60.4, 51.9)}})
    lines = table.splitlines()
    assert lines[0].startswith("| Emotion | P Before [%] | P Before paper [%] | P After [%] |")
    assert lines[2] == "| Anger | 50.0 | 45.5 | 50.0 | 66.7 | 60.4 | 66.7 | 57.1 | 51.9 | 57.1 |"
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| Anger",
        "| Happiness",
        "| Neutral",
        "| Sadness",
        "| Macro mean",
        "| Micro mean",
        "| Weighted mean",
    ]
    assert lines[6].startswith("| Macro mean | 37.5 | - |")


def test_confusion_png_is_written(tmp_path: Path, report) -> None:
    path = plot_confusion(report.confusion, CLASSES, tmp_path / "cm.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000
