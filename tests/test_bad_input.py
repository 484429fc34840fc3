"""Bad input gives an error that names the file or key and the remedy; a killed process leaves nothing
half-written that a later reader would trust.

Each case uses the real component (OpenCV decoding of a real CREMA-D clip cut short, torch checkpoints,
the subject manifests, Flower's run config) and, for the two kills, real processes stopped with SIGKILL:
`fedfer features` on real clips, and a Flower simulation of a prepared run (`build_fake_run`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, REPO

from fedfer.config import FeatureConfig
from fedfer.data.extract import extract_video_features
from fedfer.data.store import FeatureStore
from fedfer.data.subject import load_subject, read_subjects_file, write_subject
from fedfer.data.video import VideoError, read_video
from fedfer.federation.client import SubjectClient
from fedfer.model.checkpoint import CheckpointError, HeadCard, load_head, load_state, save_head
from fedfer.model.heads import VFERHead
from fedfer.runconfig import FederationConfig, PersonalizeConfig
from fedfer.rundir import RunDir
from fedfer.runs.study import check_completed
from fedfer.testing import build_fake_run

SAMPLES = sorted((DATA / "crema-d-samples").glob("*.flv"))
FAST = FeatureConfig(image_size=112, frame_step=6, workers=0)


def test_a_truncated_video_is_refused_naming_it_and_the_remedy(tmp_path: Path) -> None:
    cut = tmp_path / "1001_DFA_ANG_XX.flv"
    cut.write_bytes(SAMPLES[0].read_bytes()[: SAMPLES[0].stat().st_size // 3])  # a partial copy

    with pytest.raises(VideoError, match=r"1001_DFA_ANG_XX\.flv decodes to \d+ of the 67 frames .* copy it again"):
        read_video(cut)
    assert len(read_video(SAMPLES[0]).frames) == 67  # the whole file is untouched by the check


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"p-threshold": 1.5}, "p-threshold = 1.5 (expected a probability in [0, 1))"),
        ({"fraction-train": 0.0}, "fraction-train = 0.0 (expected a number in (0, 1])"),
        ({"num-server-rounds": "two"}, "num-server-rounds = 'two' (expected an integer >= 1)"),
        ({"dp-noise-multiplier": -0.1}, "dp-noise-multiplier = -0.1 (expected a number >= 0)"),
        ({"batchnorm": "caffe"}, "batchnorm = 'caffe' (expected one of ('keras', 'torch'))"),
        ({"batch-size": True}, "batch-size = True (expected an integer >= 1)"),
    ],
)
def test_out_of_range_run_config_values_are_named_with_what_the_key_accepts(values: dict, named: str) -> None:
    with pytest.raises(ValueError, match="out-of-range run-config values") as err:
        FederationConfig.from_run_config({**FederationConfig().to_run_config(), **values})
    assert named in str(err.value) and "--run-config" in str(err.value)


def test_a_subject_without_clips_or_with_a_damaged_manifest_is_named(tmp_path: Path) -> None:
    manifest = write_subject(tmp_path / "1001", "1001", ("ANG", "HAP"), tmp_path / "features", [])
    with pytest.raises(ValueError, match=r"subject\.json lists no clips for subject 1001: give the subject"):
        load_subject(manifest.parent)
    manifest.write_text('{"subject": "1001", "clips": [')  # cut short by hand or by a full disk
    with pytest.raises(ValueError, match=r"subject\.json is not a readable subject manifest .* prepare the run again"):
        load_subject(manifest.parent)


def test_a_damaged_checkpoint_is_named_with_the_remedy(tmp_path: Path) -> None:
    path = tmp_path / "v.pt"
    save_head(path, VFERHead(6), HeadCard("vfer", ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"), "fake"))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*v\.pt .*delete it and train again"):
        load_head(path, stage="vfer")


def test_a_client_refuses_a_g_trained_on_another_backbone(tmp_path: Path) -> None:
    values = build_fake_run(tmp_path, num_subjects=1)
    g, card = load_head(values["ifer-checkpoint"], stage="ifer")
    save_head(tmp_path / "g-other.pt", g, HeadCard("ifer", card.classes, "imagenet-mobilenet_v2"))
    subject = read_subjects_file(values["subjects-file"])[0]
    client = SubjectClient(str(subject), str(tmp_path / "g-other.pt"), PersonalizeConfig(), run_id=1)

    with pytest.raises(CheckpointError, match=r"backbone 'imagenet-mobilenet_v2' .* retrain the head"):
        client.personalize_round(_central(values), 1, seed=0)


def _central(values: dict) -> dict:
    from fedfer.federation.protocol import v_state

    return v_state(load_head(values["central-checkpoint"], stage="vfer")[0])


def test_a_subject_with_no_video_above_the_threshold_is_named_with_the_remedy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    values = build_fake_run(tmp_path, num_subjects=1)
    subject = read_subjects_file(values["subjects-file"])[0]
    strict = PersonalizeConfig(p_threshold=0.9, max_per_class=3, epochs=1)  # its g() tops out near 0.5
    client = SubjectClient(str(subject), values["ifer-checkpoint"], strict, run_id=1)
    central = _central(values)

    with caplog.at_level(logging.WARNING):
        state, selected, _ = client.personalize_round(central, 1, seed=0)

    assert selected == 0 and all((state[k] == central[k]).all() for k in central)
    assert f"subject {subject.name}: no video reached p-threshold 0.90" in caplog.text
    assert "lower p-threshold (--p-threshold)" in caplog.text


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc), parents before children."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, ...
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(0), [])
        found += below
        todo += below
    return found


def kill_tree(process: subprocess.Popen) -> list[int]:
    """SIGKILL `process` and everything it started: frozen first (SIGSTOP), so none forks or is reparented
    in between. Returns the PIDs killed."""
    tree = [process.pid]
    for _ in range(3):  # a process may have forked while the tree was being stopped
        for pid in [process.pid, *descendants(process.pid)]:
            if pid not in tree:
                tree.append(pid)
        for pid in tree:
            with _gone():
                os.kill(pid, signal.SIGSTOP)
    for pid in tree:
        with _gone():
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 60  # SIGKILL is delivered, not awaited: a busy machine takes a while
    while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    return tree


class _gone:
    """Ignore a process that has already exited."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, *_) -> bool:
        return kind is ProcessLookupError


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, process: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            kill_tree(process)
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.05)


def test_a_feature_extraction_killed_mid_run_leaves_only_whole_clips(tmp_path: Path) -> None:
    videos, cache = tmp_path / "videos", tmp_path / "cache"
    videos.mkdir()
    for copy in range(3):  # nine clips: the kill lands while later ones are being written
        for sample in SAMPLES:
            shutil.copy(sample, videos / f"{sample.stem}_{copy}.flv")
    command = [sys.executable, "-m", "fedfer.cli", "features", str(videos), "--out", str(cache)]
    command += ["--image-size", "112", "--frame-step", "6", "--workers", "0"]
    process = subprocess.Popen(command, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL)
    wait_for(lambda: len(FeatureStore(cache).clip_ids()) >= 1, process, 600, "first cached clip")
    killed = kill_tree(process)

    store = FeatureStore(cache)
    done = store.clip_ids()
    assert 1 <= len(done) < 9 and not any(alive(pid) for pid in killed)
    for clip in done:  # every clip the store offers reads back whole
        assert store.load(clip).shape[1] == 1280 and store.meta(clip)["fingerprint"]
    before = {clip: store.path(clip).read_bytes() for clip in done}

    resumed = extract_video_features(sorted(videos.iterdir()), cache, FAST, progress=False)

    assert len(resumed.clip_ids()) == 9
    assert all(resumed.path(clip).read_bytes() == before[clip] for clip in done)  # kept, not recomputed
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp") and not p.name.startswith(".")]


def test_a_federation_killed_mid_run_leaves_only_whole_files(tmp_path: Path) -> None:
    values = build_fake_run(tmp_path / "prepared", num_subjects=3)
    run = RunDir(tmp_path / "run")
    values = {**values, "run-dir": str(run.root), "num-server-rounds": 3}
    script = (
        "import json, sys; from pathlib import Path; from fedfer.runs.simulate import simulate_prepared; "
        "simulate_prepared(Path(sys.argv[1]), json.loads(sys.argv[2]))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(run.root), json.dumps(values)],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    wait_for(lambda: run.central_checkpoint(1).is_file(), process, 600, "round-1 checkpoint")
    killed = kill_tree(process)  # the server is writing round 1's results and the clients round 2's

    assert not any(alive(pid) for pid in killed)
    readable = 0
    for path in sorted(run.root.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or {"flwr-home", "logs"} & set(path.parts):
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".pt":
            load_state(path)
        elif path.suffix == ".npz":
            with np.load(path) as data:
                [data[k] for k in data.files]
        readable += 1
    assert readable >= 2  # at least the round-0 and round-1 checkpoints
    with pytest.raises(RuntimeError, match="recorded rounds"):
        check_completed(run, rounds=3)  # an interrupted run is never taken for a finished one
    for subject in read_subjects_file(values["subjects-file"]):
        load_subject(subject)  # the subjects' manifests and features are intact
