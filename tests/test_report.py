"""The run report measures what the paper measured: Table 2 from round 1, like-for-like columns.

The run folders here are written with the same layout and keys the ServerApp and the strategy
write (RunDir, protocol keys), with confusion matrices chosen so each rule is visible.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from fedfer.data.subject import write_subject
from fedfer.federation.protocol import CM_PERSONAL, CM_PSEUDO, NUM_EXAMPLES, PARTITION_ID
from fedfer.rundir import RunDir
from fedfer.runs.records import collect
from fedfer.runs.report import write_report

CLASSES = ("ANG", "HAP", "NEU")
SUBJECTS = ("1001", "1002", "1003")
# The central model on each subject's 6 labelled clips (rows = truth, columns = prediction).
CENTRAL = {
    "1001": [[1, 1, 0], [0, 2, 0], [0, 1, 1]],
    "1002": [[2, 0, 0], [1, 1, 0], [0, 0, 2]],
    "1003": [[0, 2, 0], [0, 2, 0], [0, 2, 0]],
}
PERFECT = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def write_run(root: Path, round_1: dict[str, dict], round_2: dict[str, dict]) -> RunDir:
    """A finished 2-round run: subjects, central evaluations, and the clients' evaluate replies per round."""
    run = RunDir(root)
    dirs = [str(write_subject(run.subject(s), s, CLASSES, root / "features", []).parent) for s in SUBJECTS]
    run.subjects_file.write_text(json.dumps(dirs))
    run.server.mkdir(parents=True)
    for r in (0, 2):
        run.central_eval(r).write_text(json.dumps({"per_subject": CENTRAL}))

    def entry(number: int, replies: dict[str, dict]) -> dict:
        clients = {}
        for node, (subject, reply) in enumerate(replies.items()):
            metrics = {PARTITION_ID: SUBJECTS.index(subject), NUM_EXAMPLES: 6}
            if "error" in reply:
                clients[str(node)] = {"error": reply["error"]}
                continue
            clients[str(node)] = {
                "train": {**metrics, NUM_EXAMPLES: int(np.sum(reply["pseudo"]))},
                "evaluate": {
                    **metrics,
                    CM_PERSONAL: np.ravel(reply["personal"]).tolist(),
                    CM_PSEUDO: np.ravel(reply["pseudo"]).tolist(),
                },
            }
        return {"round": number, "seconds": 1.0, "bytes_up": {}, "bytes_down": {}, "clients": clients}

    run.rounds.write_text(json.dumps([entry(1, round_1), entry(2, round_2)]))
    return run


NOTHING_SELECTED = np.zeros((3, 3), dtype=int).tolist()
SOME_SELECTED = [[1, 0, 0], [0, 2, 0], [0, 1, 0]]


def test_table_2_is_round_1_and_later_rounds_are_extra_rows(tmp_path: Path) -> None:
    round_1 = {
        "1001": {"personal": PERFECT, "pseudo": SOME_SELECTED},
        "1002": {"personal": CENTRAL["1002"], "pseudo": NOTHING_SELECTED},  # selected nothing: kept the central v()
        "1003": {"personal": CENTRAL["1001"], "pseudo": SOME_SELECTED},
    }
    # Round 2's personal models start from the round-1 average: they must not become Table 2.
    round_2 = {s: {"personal": CENTRAL["1003"], "pseudo": SOME_SELECTED} for s in SUBJECTS}
    summary, reports = collect(write_run(tmp_path, round_1, round_2).root)

    assert (
        np.asarray(summary["personalized"]["confusion"]).tolist()
        == np.sum([r["personal"] for r in round_1.values()], axis=0).tolist()
    )
    assert np.asarray(summary["personalized_round_2"]["confusion"]).tolist() == (3 * np.array(CENTRAL["1003"])).tolist()
    change = summary["subjects_change"]
    assert change["metric"] == "weighted_f1"
    assert (change["improved"], change["unchanged"], change["worse"]) == (2, 1, 0)
    unchanged = next(s for s in summary["per_subject"] if s["subject"] == "1002")
    assert unchanged["before"] == unchanged["after"] and unchanged["selected"] == 0
    assert summary["pseudo_labels"]["selected_total"] == 8
    assert reports["central_before_answered"].confusion == reports["central_before"].confusion


def test_headline_puts_the_papers_micro_mean_beside_the_weighted_f1(tmp_path: Path) -> None:
    round_1 = {s: {"personal": PERFECT, "pseudo": SOME_SELECTED} for s in SUBJECTS}
    run = write_run(tmp_path, round_1, round_1)
    summary = write_report(run.root, {"mode": "test"})
    text = run.report.read_text()
    header = next(line for line in text.splitlines() if line.startswith("| model |"))
    assert header.split("|")[4].strip().startswith("weighted F1") and header.split("|")[6].strip().startswith(
        "accuracy"
    )
    before = summary["central_before"]
    row = next(line for line in text.splitlines() if line.startswith("| central model (before)"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1:] == [
        f"{100 * before['macro_f1']:.1f}",
        "56.0",
        f"{100 * before['weighted_f1']:.1f}",
        "59.5",
        f"{100 * before['accuracy']:.1f}",
    ]
    assert before["weighted_f1"] != pytest.approx(before["accuracy"])  # the two columns are different quantities
    assert run.gains_plot.stat().st_size > 0


def test_a_failed_client_loses_its_row_not_the_report(tmp_path: Path) -> None:
    round_1 = {
        "1001": {"personal": PERFECT, "pseudo": SOME_SELECTED},
        "1002": {"error": "ClientAppException: out of memory"},
        "1003": {"personal": PERFECT, "pseudo": SOME_SELECTED},
    }
    round_2 = {s: {"personal": PERFECT, "pseudo": SOME_SELECTED} for s in SUBJECTS}
    summary = write_report(write_run(tmp_path, round_1, round_2).root, {})
    assert summary["subjects_missing"] == ["1002"]
    assert {s["subject"] for s in summary["per_subject"]} == {"1001", "1003"}
    assert summary["rounds"][0]["failures"] == {"1": "ClientAppException: out of memory"}
    both = np.array(CENTRAL["1001"]) + np.array(CENTRAL["1003"])
    assert (
        np.asarray(summary["central_before_answered"]["confusion"]).tolist() == both.tolist()
    )  # Table 2 on the same subjects
    assert (
        np.asarray(summary["central_before"]["confusion"]).tolist() == np.sum(list(CENTRAL.values()), axis=0).tolist()
    )
    headline = next(
        line for line in RunDir(tmp_path).report.read_text().splitlines() if line.startswith("| central model (before)")
    )
    assert "on the subjects that answered" in headline
    assert f"| {100 * summary['central_before_answered']['macro_f1']:.1f} |" in headline


def test_a_run_without_central_evaluation_still_reports_the_personal_models(tmp_path: Path) -> None:
    round_1 = {s: {"personal": PERFECT, "pseudo": SOME_SELECTED} for s in SUBJECTS}
    run = write_run(tmp_path, round_1, round_1)
    for r in (0, 2):
        run.central_eval(r).unlink()
    summary = write_report(run.root, {})
    assert "central_before" not in summary and "subjects_change" not in summary
    assert summary["personalized"]["accuracy"] == 1.0
