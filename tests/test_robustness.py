"""Client faults, refused updates, a minimum of useful replies and a server crash, in real Flower runs.

Each test injects its faults through the ClientApp's Flower mod (`fedfer.federation.faults`, the
run-config key `faults`) into a prepared run without any world (`fedfer.testing.build_fake_run`),
simulated by Flower's real runtime; the resume test kills the whole `simulate_prepared` process
group after round 1 and continues from the run folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fedfer.federation.faults import parse_faults
from fedfer.federation.resume import last_completed_round, stop_reason
from fedfer.federation.validation import check_update
from fedfer.model.checkpoint import load_state
from fedfer.runconfig import FederationConfig, RobustConfig
from fedfer.rundir import RunDir
from fedfer.runs.report import write_report
from fedfer.runs.simulate import simulate_prepared
from fedfer.runs.study import check_completed
from fedfer.testing import build_fake_run

REPO = Path(__file__).resolve().parents[1]


def central_v(run: RunDir, server_round: int) -> dict[str, torch.Tensor]:
    return load_state(run.central_checkpoint(server_round))["state_dict"]


def test_faulty_replies_are_refused_and_recorded_and_the_run_completes(tmp_path: Path) -> None:
    values = build_fake_run(tmp_path / "prepared", num_subjects=5)
    run = RunDir(tmp_path / "run")
    values.update({"run-dir": str(run.root), "faults": "raise@1,nan@2,shape@3,dtype@4", "p-threshold": 0.0})
    simulate_prepared(run.root, values)
    check_completed(run, rounds=2)
    summary = write_report(run.root, {"mode": "simulation"}, subjects_file=Path(values["subjects-file"]))

    for entry in json.loads(run.rounds.read_text()):
        errors = sorted(c["error"] for c in entry["clients"].values() if "error" in c)
        assert len(errors) == 4, errors
        assert any("injected fault: the client raises" in e for e in errors)
        assert any("non-finite values" in e for e in errors)
        # A wrong shape (v() packed into one array, one value short) is stopped by the client's own audit
        # before it leaves (else by the server's check).
        assert any("has shape" in e or ("refused to send" in e and "array 'packed' [211781]" in e) for e in errors)
        assert any("has dtype float64" in e for e in errors)
        norms = [c["update_norm"] for c in entry["clients"].values() if "update_norm" in c]
        assert len(norms) == 1 and 0 < norms[0] < RobustConfig().max_update_norm
    for r in summary["rounds"]:
        assert len(r["failures"]) == 4
    final = central_v(run, 2)
    assert all(torch.isfinite(t).all() for t in final.values() if t.is_floating_point())
    assert "non-finite values" in run.report.read_text()


def test_a_straggler_is_recorded_and_too_few_replies_stop_the_run(tmp_path: Path) -> None:
    values = build_fake_run(tmp_path / "prepared", num_subjects=3)
    run = RunDir(tmp_path / "run")
    values.update({"run-dir": str(run.root), "faults": "hang@0,raise@1", "min-replies": 2, "round-timeout": 90.0})
    with pytest.raises(RuntimeError, match="Flower run"):
        simulate_prepared(run.root, values)
    reason = stop_reason(run)  # the clean client's reply may miss the timeout too on a busy machine: not counted
    assert reason is not None and "accepted replies of 3 sent, fewer than min-replies = 2" in reason
    (entry,) = json.loads(run.rounds.read_text())
    errors = [c.get("error", "") for c in entry["clients"].values()]
    assert any("injected fault: the client raises" in e for e in errors)
    assert any("no reply within round-timeout 90 s" in e for e in errors)


def test_updates_are_checked_before_averaging() -> None:
    rng = np.random.default_rng(0)
    reference = {"a": rng.normal(size=(4, 3)).astype(np.float32), "b": rng.normal(size=5).astype(np.float32)}
    ok = {k: v + 0.01 for k, v in reference.items()}
    assert check_update(ok, reference, max_norm=1.0).reason is None
    assert check_update(ok, reference, max_norm=1.0).norm == pytest.approx(0.01 * np.sqrt(17), rel=1e-3)
    assert "missing ['b']" in check_update({"a": ok["a"]}, reference, 1.0).reason
    assert "exceeds max-update-norm 1" in check_update({k: v * 100 for k, v in ok.items()}, reference, 1.0).reason
    assert check_update({k: v * 100 for k, v in ok.items()}, reference, 0.0).reason is None  # 0: no bound
    nan = {**ok, "b": np.full(5, np.inf, dtype=np.float32)}
    assert "5 non-finite" in check_update(nan, reference, 1.0).reason
    with pytest.raises(ValueError, match="faults = 'nan@x'"):
        parse_faults("nan@x")
    with pytest.raises(ValueError, match="aggregation = 'mean'"):
        FederationConfig.from_run_config({"aggregation": "mean"})


def _descendants(pid: int) -> set[int]:
    """PIDs of every live process below `pid` (Linux /proc), `pid` included."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        todo.extend(children.get(p, []))
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for p in pids:
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(p)
    return alive


def test_a_run_killed_after_a_round_resumes_to_the_same_central_v(tmp_path: Path) -> None:
    values = build_fake_run(tmp_path / "prepared", num_subjects=3)
    values["num-server-rounds"] = 3
    whole = RunDir(tmp_path / "whole")
    simulate_prepared(whole.root, {**values, "run-dir": str(whole.root)})

    crashed = RunDir(tmp_path / "crashed")
    config = tmp_path / "values.json"
    config.write_text(json.dumps({**values, "run-dir": str(crashed.root)}))
    script = (
        "import json, sys; from pathlib import Path; from fedfer.runs.simulate import simulate_prepared; "
        "v = json.loads(Path(sys.argv[1]).read_text()); simulate_prepared(Path(v['run-dir']), v)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(config)],
        env=env,
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tree: set[int] = set()
    try:
        deadline = time.monotonic() + 300
        while last_completed_round(crashed) < 1 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            tree |= _descendants(process.pid)
        assert process.poll() is None, "the run ended before it could be killed"
        tree |= _descendants(process.pid)
    finally:
        # The crash: SIGKILL to the run's process group and to every group its processes started
        # (SuperLink, Flower's simulation, Ray): nothing gets to clean up or write anything more.
        for group in {os.getpgid(p) for p in _alive(tree) if p > 1} | {process.pid}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(tree) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not _alive(tree), f"left running: {_alive(tree)}"
    done = last_completed_round(crashed)
    assert 1 <= done < 3, done

    simulate_prepared(crashed.root, {**values, "run-dir": str(crashed.root), "resume-round": done})
    check_completed(crashed, rounds=3)
    assert [r["round"] for r in json.loads(crashed.rounds.read_text())] == [1, 2, 3]
    expected, resumed = central_v(whole, 3), central_v(crashed, 3)
    assert expected.keys() == resumed.keys()
    for key, tensor in expected.items():
        torch.testing.assert_close(resumed[key], tensor, rtol=1e-4, atol=1e-5, msg=key)
    assert not torch.equal(expected["frame.0.weight"], central_v(whole, 0)["frame.0.weight"])


def test_resume_starts_after_the_last_round_recorded_in_full(tmp_path: Path) -> None:
    from fedfer.io import atomic_write_json
    from fedfer.runs.options import RunOptions
    from fedfer.runs.study import PreparedRun, resume_values

    run = RunDir(tmp_path)
    run.server.mkdir()
    atomic_write_json(run.rounds, [{"round": 1}, {"round": 2}])
    run.central_checkpoint(1).write_bytes(b"v")  # round 2's checkpoint never reached the disk
    prepared = PreparedRun(run, None, [], FederationConfig().to_run_config())
    assert last_completed_round(run) == 1
    values = resume_values(prepared, RunOptions(federation=FederationConfig(num_server_rounds=3), resume=True))
    assert FederationConfig.from_run_config(values).resume_round == 1
    assert (
        resume_values(prepared, RunOptions(federation=FederationConfig(num_server_rounds=3))) == prepared.values
    )  # a new run
    run.central_checkpoint(2).write_bytes(b"v")
    with pytest.raises(ValueError, match="completed all 2 rounds: nothing to resume"):
        resume_values(prepared, RunOptions(federation=FederationConfig(num_server_rounds=2), resume=True))
    atomic_write_json(run.rounds, [{"round": 1}, {"round": 2, "stopped": "round 2: too few"}])
    assert last_completed_round(run) == 1 and stop_reason(run) == "round 2: too few"
