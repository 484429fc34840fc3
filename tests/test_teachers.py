"""The pseudo-labellers: choosing one, crema-frames on training actors only, the FER-2013 port, a
CREMA-D-layout world without AffectNet end to end, and the real CREMA-D clips through every teacher."""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DATA

from fedfer import cli
from fedfer.config import PIXEL_TEACHER
from fedfer.data.datasets import EMOTIONS_4, EMOTIONS_6, Clip
from fedfer.data.fer2013 import FER2013_CLASSES, load_fer2013, task_probabilities
from fedfer.data.store import FeatureStore
from fedfer.data.subject import write_subject
from fedfer.federation.client import SubjectClient
from fedfer.federation.protocol import v_state
from fedfer.model.checkpoint import load_head
from fedfer.runconfig import PersonalizeConfig
from fedfer.runs.options import add_run_arguments, options_from_args
from fedfer.runs.study import run_stages
from fedfer.stages.sets import FRAMES_PER_CLIP, TEACHER_DEV_EVERY, crema_frame_sets, sample_frames
from fedfer.stages.teacher import choose_teacher
from fedfer.stages.workspace import World

REAL_CLIPS = sorted((DATA / "crema-d-samples").glob("*.flv"))
# Small, quick stages: 112 px crops, few epochs (the flags a user would pass).
FLAGS = ["--image-size", "112", "--ifer-epochs", "4", "--vfer-epochs", "2", "--seed", "0"]


# ------------------------------------------------------------------------------ choosing a teacher


def test_the_default_teacher_follows_the_world_and_a_bad_choice_names_the_remedy(tmp_path: Path) -> None:
    with_stills = World("w", tmp_path / "crema_d", tmp_path / "affectnet")
    videos_only = World("w", tmp_path / "crema_d", None)

    assert choose_teacher(None, with_stills).name == "affectnet"
    chosen = choose_teacher(None, videos_only)
    assert chosen.name == "crema-frames" and "no --affectnet" in chosen.reason
    assert choose_teacher(PIXEL_TEACHER, videos_only).checkpoint is None
    with pytest.raises(FileNotFoundError, match="--affectnet DIR"):
        choose_teacher("affectnet", videos_only)
    with pytest.raises(FileNotFoundError, match="crema-frames"):
        choose_teacher(str(tmp_path / "no-such-g.pt"), videos_only)
    g = tmp_path / "g.pt"
    g.write_bytes(b"")
    assert choose_teacher(str(g), videos_only).checkpoint == g


def test_ifer_checkpoint_is_the_teacher_path_flag() -> None:
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    assert options_from_args(parser.parse_args(["--ifer-checkpoint", "g.pt"])).teacher == "g.pt"
    assert options_from_args(parser.parse_args(["--teacher", "crema-frames"])).teacher == "crema-frames"
    assert options_from_args(parser.parse_args([])).teacher is None


# ------------------------------------------------------------------------------ crema-frames


class ReadLog(FeatureStore):
    """A feature store that remembers which clips were read."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.read: set[str] = set()

    def load(self, clip_id: str) -> np.ndarray:
        self.read.add(clip_id)
        return super().load(clip_id)


def test_crema_frames_reads_only_training_actors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    store = ReadLog(tmp_path)
    clips, lengths = [], {}
    for a in range(20):
        for i in range(4):
            clip_id = f"{1001 + a}_S{i}_{EMOTIONS_6[i]}_XX"
            lengths[clip_id] = int(rng.integers(3, 20))
            store.save(clip_id, rng.normal(size=(lengths[clip_id], 1280)).astype(np.float16), {})
            clips.append(Clip(clip_id, str(1001 + a), tmp_path / f"{clip_id}.flv", i if i < 3 else None))
    train = [str(1001 + a) for a in range(12)]

    sets = crema_frame_sets(store, clips, train, "uniform")

    read_actors = {c.split("_")[0] for c in store.read}
    assert read_actors <= set(train)  # never a dev or test actor's clip
    dev_actors = set(sorted(train)[::TEACHER_DEV_EVERY])
    expected = {
        name: sum(min(lengths[c.clip_id], FRAMES_PER_CLIP) for c in clips if c.label is not None and pick(c.actor))
        for name, pick in (("train", lambda a: a in train and a not in dev_actors), ("dev", dev_actors.__contains__))
    }
    assert {name: len(s.labels) for name, s in sets.items()} == expected
    assert sets["train"].inputs.shape[1] == 1280 and set(sets["train"].labels.tolist()) == {0, 1, 2}


def test_frame_sampling_uniform_spans_the_clip_and_peak_takes_the_frames_farthest_from_the_start() -> None:
    clip = np.zeros((20, 1280), np.float16)
    clip[12:16] = 5.0  # the apex
    clip[:, 0] = np.arange(20)  # frame index, also a small drift

    uniform = sample_frames(clip, 4, "uniform")[:, 0].tolist()
    peak = sample_frames(clip, 4, "peak")[:, 0].tolist()

    assert uniform == [0, 6, 13, 19]
    assert peak == [12, 13, 14, 15]
    assert len(sample_frames(clip[:3], 4, "peak")) == 3
    with pytest.raises(ValueError, match="uniform"):
        sample_frames(clip, 4, "middle")


# ------------------------------------------------------------------------------ FER-2013 model


def test_fer2013_model_maps_its_seven_classes_to_the_task_without_surprise() -> None:
    model = load_fer2013()
    assert sum(p.numel() for p in model.parameters()) == 56_951
    with torch.inference_mode():
        probabilities = torch.softmax(model(torch.zeros(2, 1, 64, 64)), dim=-1).numpy()
    assert probabilities.shape == (2, 7)

    onehot_surprise = np.eye(7)[[FER2013_CLASSES.index("SUR")]]
    assert task_probabilities(onehot_surprise, EMOTIONS_6).sum() == 0  # surprise's mass is left out
    six = task_probabilities(probabilities, EMOTIONS_6)
    four = task_probabilities(probabilities, EMOTIONS_4)
    assert six.shape == (2, 6) and four.shape == (2, 4)
    assert np.allclose(four, six[:, [EMOTIONS_6.index(c) for c in EMOTIONS_4]])
    with pytest.raises(ValueError, match="CON"):
        task_probabilities(probabilities, ("ANG", "CON"))


# ------------------------------------------------------------------------------ a world without AffectNet


@pytest.fixture(scope="module")
def crema_only(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A CREMA-D-layout directory holding the tiny world's crema_d/ alone, and the stages of
    both feature-based teachers on it (affectnet from the tiny world's stills, given by --affectnet)."""
    root = tmp_path_factory.mktemp("crema_only")
    world = root / "CREMA-D"
    world.mkdir()
    for item in (tiny_world / "crema_d").iterdir():
        (world / item.name).symlink_to(item)
    flags = ["--world", str(world), "--workspace", str(root / "data"), *FLAGS]
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    crema = run_stages(options_from_args(parser.parse_args(flags)))
    affect = run_stages(options_from_args(parser.parse_args([*flags, "--affectnet", str(tiny_world / "affectnet")])))
    return {"root": root, "world": world, "flags": flags, "crema-frames": crema, "affectnet": affect}


def test_fedfer_run_on_a_crema_d_directory_without_affectnet(crema_only: dict, capsys) -> None:
    root = crema_only["root"]
    flags = [*crema_only["flags"], "--results", str(root / "results"), "--clients", "2", "--rounds", "1"]

    # the clients read them; AdaBN moves v()'s BatchNorm statistics beyond the default update bound
    beyond = ["--teacher-shift", "prior", "--threshold-rule", "flexmatch", "--adabn", "--max-update-norm", "0"]
    assert cli.main(["run", *flags, "-P", "5", "--p-threshold", "0.3", *beyond]) == 0

    out = capsys.readouterr().out
    assert "pseudo-labeller: crema-frames (no --affectnet" in out
    run_dir = root / "results" / "CREMA-D-K6-seed0"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["teacher"] == "crema-frames" and summary["rounds"][0]["failures"] == {}
    assert "Pseudo-labeller: **crema-frames**" in (run_dir / "report.md").read_text()
    options = json.loads((run_dir / "options.json").read_text())
    assert options["teacher_used"] == "crema-frames" and options["affectnet"] is None
    values = tomllib.loads((run_dir / "run_config.toml").read_text())
    assert values["teacher"] == "crema-frames"
    assert (values["teacher-shift"], values["threshold-rule"], values["adabn"]) == ("prior", "flexmatch", True)
    prior = [float(x) for x in values["class-prior"].split(",")]  # the central training clips' shares
    assert len(prior) == 6 and abs(sum(prior) - 1) < 1e-4
    assert values["ifer-checkpoint"] == str(crema_only["crema-frames"].ifer.resolve())  # the clients' g()


def test_the_pixel_teacher_runs_in_the_flower_simulation_on_the_subjects_videos(crema_only: dict) -> None:
    root = crema_only["root"]
    flags = [*crema_only["flags"], "--results", str(root / "results"), "--clients", "2", "--rounds", "1"]

    assert cli.main(["run", *flags, "--teacher", PIXEL_TEACHER, "--name", "pixel", "--p-threshold", "0.3"]) == 0

    summary = json.loads((root / "results" / "pixel" / "summary.json").read_text())
    assert summary["teacher"] == PIXEL_TEACHER and summary["rounds"][0]["failures"] == {}
    trained_on = sum(summary["rounds"][0]["selected_videos"].values())
    # a selected clip the crowd tied on has no label to score its pseudo label against
    assert 0 < summary["pseudo_labels"]["selected_total"] <= trained_on
    subjects = json.loads((root / "results" / "pixel" / "subjects.json").read_text())
    manifest = json.loads((Path(subjects[0]) / "subject.json").read_text())
    assert Path(manifest["video_dir"]) == (crema_only["world"] / "VideoFlash").resolve()  # the client's own videos


# ------------------------------------------------------------------------------ real CREMA-D clips


def real_subject(root: Path, image_size: int) -> Path:
    """A subject holding the three real CREMA-D clips as videos; features are extracted on first load."""
    clips = [(p.stem, EMOTIONS_6.index(p.stem.split("_")[2])) for p in REAL_CLIPS]
    config = {"image_size": image_size, "workers": 0}
    manifest = write_subject(
        root / "1001",
        "1001",
        EMOTIONS_6,
        root / "features",
        clips,
        video_dir=REAL_CLIPS[0].parent,
        feature_config=config,
    )
    return manifest.parent


@pytest.mark.parametrize("teacher", ["affectnet", "crema-frames", PIXEL_TEACHER])
def test_real_crema_d_clips_through_each_teacher_and_one_personalization_round(
    crema_only: dict, teacher: str, tmp_path: Path
) -> None:
    prepared = crema_only["crema-frames"]
    ifer = "" if teacher == PIXEL_TEACHER else str(crema_only[teacher].ifer)
    central_v, _ = load_head(prepared.vfer, stage="vfer", classes=EMOTIONS_6)
    config = PersonalizeConfig(max_per_class=20, p_threshold=0.0, epochs=2)
    client = SubjectClient(real_subject(tmp_path, image_size=112), ifer, config, run_id=7, teacher=teacher)
    sent = v_state(central_v)

    probabilities = client.teacher_probabilities()  # frame mean of the teacher, on real video
    state, selected, loss = client.personalize_round(sent, server_round=1, seed=0)

    assert probabilities.shape == (3, 6) and (probabilities.sum(axis=1) <= 1 + 1e-5).all()
    assert all(len(f) >= 50 and f.shape[1] == 1280 for f in client.data.features)  # every real frame, through f()
    assert list(state) == list(sent)  # what the ClientApp sends: v()'s tensors, nothing else
    assert all(state[k].shape == sent[k].shape for k in sent)
    assert any(not torch.equal(state[k], sent[k]) for k in sent)  # 2 epochs of v() on the real clips
    assert selected == 3 and np.isfinite(loss)
    record = json.loads((client.dir / "personal" / "personal.json").read_text())
    assert record["selected"] == 3 and len(record["train_loss"]) == 2
    with np.load(client.dir / "personal" / "pseudo.npz") as pseudo:
        labels = pseudo["labels"]
    assert labels.tolist() == probabilities.argmax(axis=1).tolist()  # the pseudo labels are the frame-mean argmax
    if teacher == PIXEL_TEACHER:  # the only teacher that has seen real faces: it gets all three right
        assert [EMOTIONS_6[k] for k in labels] == ["ANG", "HAP", "NEU"]
