"""Failures inside a real Flower run: what Flower survives fedfer survives too, and says so.

A prepared run without any world (`fedfer.testing.build_fake_run`), simulated by Flower's real
runtime. One subject's features are missing, so its ClientApp raises on every message: Flower ends
the rounds with the other replies, and the report must keep everything that was computed.
"""

import json
from pathlib import Path

import pytest

from fedfer.data.subject import read_subjects_file
from fedfer.rundir import RunDir
from fedfer.runs.report import write_report
from fedfer.runs.simulate import simulate_prepared
from fedfer.runs.study import check_completed
from fedfer.testing import build_fake_run


def test_a_client_that_raises_costs_its_row_not_the_run(tmp_path: Path) -> None:
    values = build_fake_run(tmp_path / "prepared", num_subjects=3)
    broken = read_subjects_file(values["subjects-file"])[1]
    manifest = json.loads((broken / "subject.json").read_text())
    (Path(manifest["feature_dir"]) / f"{manifest['clips'][0]['clip_id']}.npz").unlink()

    run = RunDir(tmp_path / "run")
    simulate_prepared(run.root, {**values, "run-dir": str(run.root)})  # Flower completes the run
    check_completed(run, rounds=2)
    summary = write_report(run.root, {"mode": "simulation"}, subjects_file=Path(values["subjects-file"]))

    assert summary["subjects_missing"] == [broken.name]
    assert len(summary["per_subject"]) == 2
    for r in summary["rounds"]:
        assert len(r["failures"]) == 1 and "no features for clip" in next(iter(r["failures"].values()))
        assert len(r["selected_videos"]) == 2
    assert run.report.is_file() and run.central_checkpoint(2).is_file()


def test_a_run_that_did_not_record_every_round_is_refused(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.server.mkdir()
    run.rounds.write_text(json.dumps([{"round": 1}]))
    with pytest.raises(RuntimeError, match=r"recorded rounds \[1\] of 2"):
        check_completed(run, rounds=2)
