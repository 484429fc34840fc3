"""Seed 003's route to adapting f(): SimCLR on a subject's own face crops, federated over f()'s last blocks.

The model tests train on real face crops (the tiny world's videos, MediaPipe, the offline MobileNetV2);
the last test runs `fedfer run --adapt-f-rounds` end to end in Flower simulations and reads what each
client sent from its own audit.
"""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, tiny_workspace

from fedfer import cli
from fedfer.data.backbone import load_frame_encoder, save_backbone
from fedfer.data.face_cubes import face_frames
from fedfer.data.faces import CropSettings
from fedfer.federation.adapt_f import AdaptRounds
from fedfer.model.contrastive import AdaptableEncoder, ContrastiveConfig, adapt_locally, adapted_backbone, nt_xent
from fedfer.rundir import RunDir
from fedfer.runs.options import options_from_args
from fedfer.runs.simulate import simulate

SIZE = 64  # face crop side: small enough for 2 cores, large enough for MobileNetV2's 32× downsampling


def videos(tiny_world: Path, actor: str, count: int) -> list[Path]:
    return sorted((tiny_world / "crema_d" / "VideoFlash").glob(f"{actor}_*"))[:count]


@pytest.fixture(scope="module")
def crops(tiny_world: Path) -> np.ndarray:
    return face_frames(videos(tiny_world, "1001", 4), CropSettings(image_size=SIZE), per_clip=4)


def test_nt_xent_prefers_matching_views_and_is_log_of_the_negatives_when_nothing_is_told_apart() -> None:
    torch.manual_seed(0)
    z = torch.randn(8, 16)
    matched = nt_xent(z, z + 0.01 * torch.randn(8, 16), 0.5)
    shuffled = nt_xent(z, z[torch.randperm(8)], 0.5)
    assert matched < shuffled
    same = torch.ones(4, 3)  # every view alike: the pair is one of 2N - 1 equal candidates
    assert float(nt_xent(same, same, 0.5)) == pytest.approx(np.log(7), rel=1e-5)


def test_face_frames_come_per_clip_from_the_subjects_videos(tiny_world: Path, crops: np.ndarray) -> None:
    assert crops.shape == (16, SIZE, SIZE, 3) and crops.dtype == np.uint8
    assert crops.std() > 10  # faces, not blank frames


def test_adaptation_trains_the_last_blocks_only_and_the_adapted_f_is_a_weights_file(
    crops: np.ndarray, tmp_path: Path
) -> None:
    backbone = load_frame_encoder("offline")
    config = ContrastiveConfig(blocks=1, epochs=2, batch_size=8)
    encoder = AdaptableEncoder(backbone, config)
    trunk_before = {k: t.clone() for k, t in encoder.trunk.state_dict().items()}
    before = encoder.shared_state()
    loss = adapt_locally(encoder, crops, config)
    assert np.isfinite(loss) and loss < np.log(2 * config.batch_size - 1) + 1.0
    assert all(torch.equal(trunk_before[k], t) for k, t in encoder.trunk.state_dict().items())
    after = encoder.shared_state()
    assert set(after) == set(before) and all(k.startswith(("tail.", "head.")) for k in after)
    assert any(not torch.equal(before[k], after[k]) for k in after if k.endswith("weight"))

    adapted = adapted_backbone(backbone, encoder)
    path = save_backbone(adapted, tmp_path / "adapted_f.pt", "test")
    reloaded = load_frame_encoder(str(path))
    assert reloaded.weights_sha256 != backbone.weights_sha256
    np.testing.assert_array_equal(reloaded.encode(crops[:4]), adapted.encode(crops[:4]))
    assert not np.array_equal(reloaded.encode(crops[:4]), backbone.encode(crops[:4]))
    original, changed = backbone.encoder.features.state_dict(), reloaded.encoder.features.state_dict()
    assert [k for k in original if not torch.equal(original[k], changed[k])] == [k for k in original if k[:3] == "18."]


def test_too_few_crops_or_blocks_out_of_range_are_refused() -> None:
    backbone = load_frame_encoder("offline")
    with pytest.raises(ValueError, match="between 1 and 19"):
        AdaptableEncoder(backbone, ContrastiveConfig(blocks=20))
    with pytest.raises(ValueError, match="at least 2 face crops"):
        config = ContrastiveConfig(blocks=1)
        adapt_locally(AdaptableEncoder(backbone, config), np.zeros((1, 32, 32, 3), np.uint8), config)


def test_fedfer_run_adapts_f_then_personalizes_on_the_adapted_features(tiny_world: Path, tmp_path: Path) -> None:
    """`fedfer run --adapt-f-rounds`: two subjects adapt f()'s last block in a real Flower simulation, the
    world's features are re-extracted with it and the paper's federation runs on them; each client's own
    audit shows that only the block, the head and three counts left it. simulations/study_adapt_f.py then
    keeps that run, runs the frozen route beside it and tabulates both."""
    flags = ["--world", "tiny", "--workspace", str(tiny_workspace(tmp_path, tiny_world)), "--results"]
    flags += [str(tmp_path / "results"), "--clients", "2", "--image-size", str(SIZE), "--ifer-epochs", "2"]
    flags += ["--vfer-epochs", "2", "--adapt-f-rounds", "1", "--adapt-f-blocks", "1", "--adapt-f-frames", "2"]
    name = ["--name", "tiny-s0-seed0-adapt-f"]  # the study's name for this route and seed
    options = options_from_args(cli.build_parser(["run"]).parse_args(["run", *flags, *name]))
    adapt = options.federation.adapt
    assert (adapt.rounds, adapt.blocks, adapt.frames_per_clip) == (1, 1, 2)
    audit = tmp_path / "audit"
    run = RunDir(simulate(replace(options, federation=replace(options.federation, audit_dir=str(audit)))))

    summary = json.loads(run.summary.read_text())
    [adapted_round] = summary["adapt_f"]
    assert adapted_round["failures"] == {} and all(n > 0 for n in adapted_round["face_crops"].values())
    shared = AdaptRounds.load("offline", adapt, run).initial_state
    logged = json.loads(run.adapt_rounds.read_text())[0]
    assert logged["received_arrays"] == sorted(shared)
    packed = sum(t.numel() for t in shared.values())
    records = [json.loads(p.read_text()) for p in sorted(audit.glob("*.json"))]
    adapting = [r for r in records if r.get("arrays", {}).get("arrays/packed", {}).get("shape") == [packed]]
    assert len(adapting) == 2 and not any(r["refused"] for r in records)
    for record in adapting:
        assert set(record["metrics"]) == {"metrics/num-examples", "metrics/partition-id", "metrics/train-loss"}
    assert json.loads(run.options_file.read_text())["features"]["weights"] == str(run.adapted_f.resolve())
    f = load_frame_encoder(str(run.adapted_f))
    original = load_frame_encoder("offline").encoder.features.state_dict()
    changed = [k for k, t in f.encoder.features.state_dict().items() if not torch.equal(t, original[k])]
    assert changed and all(k.startswith("18.") for k in changed)
    stores = sorted((tmp_path / "data" / "features").glob("*/*"))
    assert [s.name.split("-")[0] for s in stores] == ["custom", "offline"]  # features of both f()s, apart
    assert all(list(subject.glob("face_frames/*.npz")) for subject in run.subjects_dir.iterdir())
    assert [r["round"] for r in summary["rounds"]] == [1, 2] and "Adapting f() first" in run.report.read_text()

    study = [sys.executable, str(REPO / "simulations" / "study_adapt_f.py"), *flags, "--seeds", "0", "--reuse"]
    subprocess.run([*study, "--out", str(tmp_path / "study.md")], cwd=tmp_path, check=True, timeout=600)
    table = json.loads((tmp_path / "adapt-f-published.json").read_text())["tables"]["routes"]
    frozen, adapted, paired = table["rows"]
    assert adapted[5] == f"{adapted_round['bytes_up_per_client_mean'] / 1e6:.2f}" and frozen[5] == "–"
    versus = json.loads((tmp_path / "study.json").read_text())
    assert versus["adapted"][0] == summary and "adapt_f" not in versus["frozen"][0]  # kept, and the paper's
    assert (
        paired[1]
        == f"{100 * (summary['central_before']['macro_f1'] - versus['frozen'][0]['central_before']['macro_f1']):+.1f}"
    )


def test_prepare_refuses_the_adaptation_it_cannot_run_and_names_the_verbs_that_can(capsys) -> None:
    assert cli.main(["prepare", "--world", "tiny", "--adapt-f-rounds", "1"]) == 2
    assert "use `fedfer run` or `fedfer deploy` to adapt f()" in capsys.readouterr().err
