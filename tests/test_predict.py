"""Using a trained v(): the streaming v() against the batch one, `fedfer predict` end to end on real
and synthetic videos, and the ONNX export against PyTorch in ONNX Runtime."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import DATA, tiny_workspace

from fedfer import cli
from fedfer.config import FeatureConfig, TrainConfig
from fedfer.data.datasets import EMOTIONS_4
from fedfer.data.extract import extract_video_features
from fedfer.data.faces import open_detector, resolve_detector, track_faces
from fedfer.data.subject import personal_checkpoint
from fedfer.data.video import VideoError, iter_frames
from fedfer.federation.client import SubjectClient
from fedfer.federation.protocol import load_v_state, v_state, weighted_mean
from fedfer.model.checkpoint import CheckpointError, HeadCard, load_head, save_head
from fedfer.model.heads import BATCHNORM, VFERHead, count_parameters, pad_sequences
from fedfer.model.inference import predict_proba
from fedfer.model.streaming import StreamingVFER
from fedfer.predict.choice import ModelChoice, choose_model, load_model
from fedfer.predict.exported import OnnxEngine, ort_session, read_card
from fedfer.predict.pipeline import TorchEngine
from fedfer.predict.sources import camera_source
from fedfer.runconfig import FederationConfig, PersonalizeConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions
from fedfer.runs.study import prepare_run

SAMPLES = DATA / "crema-d-samples"
IMAGE_SIZE = 112  # the smallest crop f() is run at in the project, and every second frame: a quick fixture
FEATURES = FeatureConfig(image_size=IMAGE_SIZE, frame_step=2)


# ------------------------------------------------------------------------------ streaming v()


def _head_with_statistics(style: str, seed: int) -> VFERHead:
    """A v() whose BatchNorm layers hold non-trivial running statistics (as after training)."""
    torch.manual_seed(seed)
    head = VFERHead(6, batchnorm_style=style)
    for module in head.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.2)
    return head.eval()


def _stream(v: StreamingVFER, clip: torch.Tensor) -> torch.Tensor:
    """Running probabilities of `clip` (T, 1280) → (T, K), one step per frame."""
    h, c = v.initial_state()
    steps = []
    for frame in clip:
        probabilities, h, c = v(frame.unsqueeze(0), h, c)
        steps.append(probabilities[0])
    return torch.stack(steps)


@pytest.mark.parametrize("style", sorted(BATCHNORM))
def test_streaming_v_ends_where_the_batch_v_does_on_pre_padded_clips(style: str) -> None:
    head = _head_with_statistics(style, seed=1)
    generator = torch.Generator().manual_seed(2)
    clips = [torch.rand(n, 1280, generator=generator) * 3 for n in (1, 4, 11, 23)]
    batch, lengths = pad_sequences(clips)  # (4, 23, 1280) zero pre-padded, as in training

    with torch.inference_mode():
        expected = torch.softmax(head(batch, lengths), dim=-1)
        masked = torch.softmax(head(batch), dim=-1)  # lengths from the padding itself (Keras' masking rule)
        streaming = StreamingVFER(head)
        final = torch.stack([_stream(streaming, clip)[-1] for clip in clips])

    torch.testing.assert_close(final, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(final, masked, rtol=1e-5, atol=1e-6)


def test_each_running_prediction_is_the_batch_v_on_the_frames_so_far() -> None:
    head = _head_with_statistics("keras", seed=3)
    clip = torch.rand(9, 1280, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        running = _stream(StreamingVFER(head), clip)
        prefixes, lengths = pad_sequences([clip[: t + 1] for t in range(len(clip))])
        expected = torch.softmax(head(prefixes, lengths), dim=-1)
    torch.testing.assert_close(running, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(running[0], running[-1])  # the state does carry information


def test_streaming_v_is_eval_only_and_leaves_the_callers_head_as_it_was() -> None:
    head = _head_with_statistics("torch", seed=5).train()
    streaming = StreamingVFER(head)
    assert head.training and not streaming.training
    with pytest.raises(RuntimeError, match="eval mode only"):
        streaming.train()


# ------------------------------------------------------------------------------ a trained run


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_world) -> dict:
    """A run folder as `fedfer run` leaves it, on the tiny world at 112 px: the stages, two
    subjects personalized by their real client code, and the server's FedAvg of their v() as the
    last round's central checkpoint."""
    root = tmp_path_factory.mktemp("predict_run")
    options = RunOptions(
        world="tiny",
        workspace=tiny_workspace(root, tiny_world),
        results=root / "results",
        clients=2,
        federation=FederationConfig(
            num_server_rounds=1, personalize=PersonalizeConfig(max_per_class=5, p_threshold=0.2)
        ),
        features=FEATURES,
        ifer=TrainConfig(stage="ifer", epochs=4),
        vfer=TrainConfig(stage="vfer", epochs=10, restore_best=False),  # tiny dev set: its best epoch is the first
    )
    prepared = prepare_run(options)
    central, card = load_head(prepared.prepared.vfer, stage="vfer")
    states, weights = [], []
    for subject in prepared.subjects:
        client = SubjectClient(prepared.run.subject(subject), prepared.prepared.ifer, options.federation.personalize)
        state, selected, _ = client.personalize_round(v_state(central), server_round=1, seed=0)
        states.append(state)
        weights.append(max(selected, 1))
    averaged = load_v_state(VFERHead(6), weighted_mean(states, weights)).eval()
    save_head(prepared.run.central_checkpoint(options.federation.num_server_rounds), averaged, card)
    return {"options": options, "prepared": prepared, "run": prepared.run}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _probabilities(row: dict[str, str], classes: tuple[str, ...]) -> np.ndarray:
    return np.array([float(row[f"p_{c}"]) for c in classes])


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    """The samples' features computed the training way (`fedfer features`) at the run's crop size."""
    videos = sorted(SAMPLES.glob("*.flv"))
    out = tmp_path_factory.mktemp("sample_features")
    return extract_video_features(videos, out, FEATURES, progress=False)


def _batch_probabilities(v_path: Path, store, clip_ids: list[str]) -> dict[str, np.ndarray]:
    """The batch v() on cached features, as training and evaluation run it."""
    v, _ = load_head(v_path, stage="vfer")
    return dict(zip(clip_ids, predict_proba(v, [store.load(i).astype(np.float32) for i in clip_ids])))


def test_predict_on_the_real_crema_d_samples_streams_the_batch_prediction(
    trained_run, sample_store, tmp_path: Path
) -> None:
    run: RunDir = trained_run["run"]
    classes = trained_run["options"].task.classes
    out = tmp_path / "out"

    code = cli.main(["predict", str(SAMPLES), "--run", str(run.root), "--out", str(out), "--annotate"])

    assert code == 0
    clips = {r["clip"]: r for r in _rows(out / "clips.csv")}
    frames = _rows(out / "frames.csv")
    videos = sorted(SAMPLES.glob("*.flv"))
    expected = _batch_probabilities(run.central_checkpoint(1), sample_store, [v.stem for v in videos])
    for video in videos:
        row = clips[video.stem]
        decoded = sum(1 for _ in iter_frames(video, FEATURES.frame_step)[1])
        mine = [f for f in frames if f["clip"] == video.stem]
        assert row["status"] == "ok" and int(row["frames"]) == decoded == len(mine)
        assert float(row["detection_rate"]) == 1.0  # BlazeFace finds the face in every frame of the samples
        np.testing.assert_allclose(_probabilities(row, classes), expected[video.stem], atol=1e-4)
        assert row["label"] == classes[int(np.argmax(expected[video.stem]))]
        times = [float(f["time_s"]) for f in mine]
        assert times[0] == 0.0 and np.allclose(np.diff(times), FEATURES.frame_step / 29.97, atol=1e-3)
        assert all(abs(_probabilities(f, classes).sum() - 1) < 1e-4 for f in mine)
        annotated = cv2.VideoCapture(str(out / f"{video.stem}.annotated.mp4"))
        assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == decoded
        annotated.release()
    record = json.loads((out / "predictions.json").read_text())
    assert record["classes"] == list(classes) and "central v() after round 1" in record["model"]
    assert [len(c["per_frame"]) for c in record["clips"]] == [int(clips[v.stem]["frames"]) for v in videos]


def test_a_subjects_personal_model_is_the_one_used(trained_run, sample_store, tmp_path: Path) -> None:
    run: RunDir = trained_run["run"]
    subject = trained_run["prepared"].subjects[0]
    classes = trained_run["options"].task.classes
    video = SAMPLES / "1001_DFA_HAP_XX.flv"

    code = cli.main(["predict", str(video), "--run", str(run.root), "--subject", subject, "--out", str(tmp_path)])

    assert code == 0
    (row,) = _rows(tmp_path / "clips.csv")
    prepared = trained_run["prepared"]
    candidates = {
        "personal": personal_checkpoint(run.subject(subject)),
        "other subject's": personal_checkpoint(run.subject(prepared.subjects[1])),
        "central after round 1": run.central_checkpoint(1),
        "central before": prepared.prepared.vfer,
    }
    streamed = _probabilities(row, classes)
    error = {
        name: np.abs(streamed - _batch_probabilities(path, sample_store, [video.stem])[video.stem]).max()
        for name, path in candidates.items()
    }
    assert error["personal"] < 1e-4
    assert all(error["personal"] * 10 < e for name, e in error.items() if name != "personal"), error


def test_synthetic_clips_come_out_of_predict_in_the_batch_vs_classes(trained_run, tmp_path: Path) -> None:
    """Two clips of the tiny world that the batch v() puts in different classes come out of `fedfer
    predict` (one call, both videos) with those classes: the LSTM state is reset between sources and
    the video path computes the features the batch saw."""
    prepared = trained_run["prepared"].prepared
    classes = trained_run["options"].task.classes
    v, _ = load_head(prepared.vfer, stage="vfer")
    clips = list(prepared.clips)
    batch = predict_proba(v, [prepared.store.load(c.clip_id).astype(np.float32) for c in clips])
    confident = {}  # predicted class → its most confident clip
    for clip, p in sorted(zip(clips, batch), key=lambda cp: -cp[1].max()):
        confident.setdefault(int(np.argmax(p)), clip)
    assert len(confident) >= 2, "the central v() puts every clip of the tiny world in one class"
    chosen = list(confident.items())[:2]
    videos = tmp_path / "videos"
    videos.mkdir()
    for _, clip in chosen:
        shutil.copy(clip.path, videos / clip.path.name)

    out = tmp_path / "out"
    code = cli.main(
        [
            "predict",
            str(videos),
            "--checkpoint",
            str(prepared.vfer),
            "--image-size",
            str(IMAGE_SIZE),
            "--frame-step",
            "2",
        ]
        + ["--out", str(out)]
    )

    assert code == 0
    rows = {r["clip"]: r for r in _rows(out / "clips.csv")}
    for k, clip in chosen:
        assert rows[clip.clip_id]["label"] == classes[k]


# ------------------------------------------------------------------------------ export


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory) -> Path:
    run: RunDir = trained_run["run"]
    subject = trained_run["prepared"].subjects[0]
    out = tmp_path_factory.mktemp("export")
    code = cli.main(["export", "--run", str(run.root), "--subject", subject, "--format", "onnx", "--out", str(out)])
    assert code == 0
    return out


def test_export_card_describes_the_model(trained_run, exported: Path) -> None:
    subject = trained_run["prepared"].subjects[0]
    model = load_model(choose_model(run=trained_run["run"].root, subject=subject), with_g=True)

    card = read_card(exported)

    assert card["classes"] == list(trained_run["options"].task.classes)
    assert card["input"]["shape"] == [1, IMAGE_SIZE, IMAGE_SIZE, 3] and card["input"]["dtype"] == "uint8"
    assert card["normalization"]["mean"] == list(model.backbone.mean)
    assert card["backbone_id"] == model.backbone.backbone_id and card["batchnorm"] == "keras"
    assert card["parameters"]["v"]["torch_parameters"] == count_parameters("v", model.v, 6, True).torch_parameters
    assert card["parameters"]["v"]["paper_trainable"] == 208_582
    assert card["parameters"]["g"]["torch_parameters"] == sum(p.numel() for p in model.g.parameters())
    assert f"subject {subject}" in card["model"]


def test_onnx_runtime_gives_pytorchs_outputs(trained_run, exported: Path) -> None:
    """fv_step.onnx step by step on real face crops, and g.onnx on a batch, against the PyTorch modules."""
    subject = trained_run["prepared"].subjects[0]
    model = load_model(choose_model(run=trained_run["run"].root, subject=subject), with_g=True)
    torch_engine, onnx_engine = TorchEngine(model), OnnxEngine(exported)
    with open_detector(resolve_detector("mediapipe")) as detector:
        _, frames = iter_frames(SAMPLES / "1001_DFA_ANG_XX.flv")
        crops, _ = track_faces(frames, detector, torch_engine.crop)  # (T, 112, 112, 3) uint8

    for crop in crops:
        np.testing.assert_allclose(onnx_engine.step(crop), torch_engine.step(crop), atol=1e-5)
        np.testing.assert_allclose(np.concatenate(onnx_engine.state), np.concatenate(torch_engine.state), atol=1e-4)
    features = torch.from_numpy(model.backbone.encode(crops[:5], 5).astype(np.float32))  # (5, 1280)
    (g_onnx,) = ort_session(exported / "g.onnx", 1).run(None, {"features": features.numpy()})
    with torch.inference_mode():
        g_torch = torch.softmax(model.g(features), dim=-1).numpy()
    np.testing.assert_allclose(g_onnx, g_torch, atol=1e-5)


def test_predict_on_the_export_matches_predict_in_pytorch(trained_run, exported: Path, tmp_path: Path) -> None:
    subject = trained_run["prepared"].subjects[0]
    classes = trained_run["options"].task.classes
    run = str(trained_run["run"].root)

    assert cli.main(["predict", str(SAMPLES), "--exported", str(exported), "--out", str(tmp_path / "onnx")]) == 0
    assert cli.main(["predict", str(SAMPLES), "--run", run, "--subject", subject, "--out", str(tmp_path / "pt")]) == 0

    onnx_rows, torch_rows = _rows(tmp_path / "onnx" / "frames.csv"), _rows(tmp_path / "pt" / "frames.csv")
    assert len(onnx_rows) == len(torch_rows) > 80
    for a, b in zip(onnx_rows, torch_rows):
        assert (a["clip"], a["frame"], a["x"], a["label"]) == (b["clip"], b["frame"], b["x"], b["label"])
        np.testing.assert_allclose(_probabilities(a, classes), _probabilities(b, classes), atol=1e-4)


# ------------------------------------------------------------------------------ errors


def test_model_choice_errors_name_the_file_and_the_remedy(trained_run, tmp_path: Path) -> None:
    run: RunDir = trained_run["run"]
    with pytest.raises(FileNotFoundError, match="subject 'nobody' has no personalized v\\(\\).*subjects with one"):
        choose_model(run=run.root, subject="nobody")
    with pytest.raises(ValueError, match="image_size=112, not 224"):
        choose_model(run=run.root, feature_overrides={"image_size": 224})
    with pytest.raises(FileNotFoundError, match="not a fedfer run folder"):
        choose_model(run=tmp_path)
    with pytest.raises(ValueError, match="--run RUN_DIR"):
        choose_model()


def test_a_head_of_another_backbone_or_task_is_refused(trained_run, tmp_path: Path) -> None:
    prepared = trained_run["prepared"].prepared
    v, card = load_head(prepared.vfer, stage="vfer")
    foreign = tmp_path / "foreign.pt"
    save_head(foreign, v, HeadCard("vfer", card.classes, "torchvision-mobilenet_v2-IMAGENET1K_V1"))

    with pytest.raises(CheckpointError, match="backbone 'torchvision-mobilenet_v2-IMAGENET1K_V1'"):
        load_model(choose_model(checkpoint=foreign, feature_overrides={"image_size": IMAGE_SIZE}))
    choice = ModelChoice(prepared.vfer, None, FEATURES, EMOTIONS_4, "4-class task")
    with pytest.raises(CheckpointError, match="trained for classes"):
        load_model(choice)


def test_a_missing_camera_is_a_clear_error() -> None:
    probe = cv2.VideoCapture(0)
    present = probe.isOpened()
    probe.release()
    if present:
        pytest.skip("this machine has a camera at index 0")
    with pytest.raises(VideoError, match="no camera at index 0.*pass a video file"):
        camera_source(0)
