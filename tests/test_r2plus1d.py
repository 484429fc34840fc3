"""Seed 004's R(2+1)D baseline: its shapes, its attention, its sparse centre loss, its weights file, and
that it learns from the tiny world's face clips."""

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fedfer.data.datasets.crema_d import load_crema_d
from fedfer.data.face_cubes import ClipSampling, FaceClips, extract_face_cubes, frame_indices
from fedfer.model import r2plus1d
from fedfer.model.r2plus1d import (
    ElementAttention,
    R2Plus1DFER,
    SparseCentreLoss,
    SpatioTemporalAttention,
    load_kinetics_encoder,
)
from fedfer.model.train_clips import ClipTrainConfig, fit_clips, predict_logits, train_step
from fedfer.model.training import class_weights


def test_the_papers_clip_gives_a_2x7x7_map_and_one_score_per_class() -> None:
    model = R2Plus1DFER(num_classes=6).eval()
    maps = []
    model.attention.register_forward_hook(lambda _module, inputs, output: maps.append((inputs[0].shape, output.shape)))

    with torch.inference_mode():
        out = model(torch.rand(1, 3, 16, 112, 112))  # seed 004's input: 16 frames of 112 x 112

    assert maps == [((1, 512, 2, 7, 7), (1, 512, 2, 7, 7))]  # the encoder's map, and the attention's
    assert out.logits.shape == (1, 6)
    assert out.embedding.shape == out.weights.shape == (1, 256)


def test_element_weights_lie_in_0_1_with_one_full_weight_per_clip() -> None:
    weights = ElementAttention()(torch.randn(5, 512))

    assert weights.shape == (5, 256)
    assert (weights > 0).all() and (weights <= 1).all()
    torch.testing.assert_close(weights.amax(dim=1), torch.ones(5))


def test_attention_is_softmax_qk_v_over_positions_and_over_time_steps() -> None:
    torch.manual_seed(0)
    block = SpatioTemporalAttention(channels=16, compression=8)
    block.gamma.data.fill_(0.7)
    f = torch.randn(2, 16, 3, 4, 5)  # (B, C, D, H, W)

    out = block(f)

    def direct(branch: nn.ModuleDict, axes: str) -> torch.Tensor:
        q, k, v = (branch[n](f) for n in "qkv")
        # Scores between tokens that share every other axis: over (h, w) for each d, or over d for each (h, w).
        if axes == "hw":
            scores = torch.einsum("bcdhw,bcdxy->bdhwxy", q, k).flatten(-2).softmax(-1).view(2, 3, 4, 5, 4, 5)
            return torch.einsum("bdhwxy,bcdxy->bcdhw", scores, v)
        scores = torch.einsum("bcdhw,bcehw->bhwde", q, k).softmax(-1)
        return torch.einsum("bhwde,bcehw->bcdhw", scores, v)

    expected = f + 0.7 * (direct(block.spatial, "hw") + direct(block.temporal, "d"))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_attention_block_starts_as_the_identity() -> None:
    f = torch.randn(1, 512, 2, 3, 3)

    torch.testing.assert_close(SpatioTemporalAttention()(f), f)


def test_centre_loss_is_zero_at_the_centres_and_half_the_weighted_squared_distance_elsewhere() -> None:
    loss = SparseCentreLoss(num_classes=3, dim=4)
    loss.centres.data = torch.arange(12.0).view(3, 4)
    labels = torch.tensor([2, 0])
    weights = torch.tensor([[1.0, 0.5, 0.25, 1.0], [1.0, 1.0, 1.0, 0.0]])

    at_centres = loss(loss.centres[labels].detach(), weights, labels)
    off = loss(loss.centres[labels].detach() + torch.tensor([[1.0, 2.0, 0, 0], [0, 0, 0, 3.0]]), weights, labels)

    assert at_centres.item() == 0.0
    # Clip 1: ½(1·1² + 0.5·2²) = 1.5; clip 2: its only distance is on an element of weight 0. Mean over 2 clips.
    assert off.item() == pytest.approx(1.5 / 2)


def test_a_step_on_the_centres_lowers_the_centre_loss() -> None:
    torch.manual_seed(0)
    loss = SparseCentreLoss(num_classes=3, dim=8)
    embedding, labels, weights = torch.randn(12, 8), torch.arange(12) % 3, torch.rand(12, 8) + 0.1
    optimizer = torch.optim.SGD(loss.parameters(), lr=0.5)

    before = loss(embedding, weights, labels)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()

    assert loss(embedding, weights, labels).item() < before.item()


def test_missing_kinetics_weights_name_the_path_and_the_remedy(tmp_path: Path) -> None:
    path = tmp_path / "r2plus1d_18-91a641e6.pth"

    with pytest.raises(FileNotFoundError, match="r2plus1d_18-91a641e6.pth") as error:
        load_kinetics_encoder(R2Plus1DFER(6), path)

    assert str(path) in str(error.value) and "download.pytorch.org" in str(error.value)


def test_a_different_weights_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r2plus1d_18-91a641e6.pth"
    path.write_bytes(b"not the weights")

    with pytest.raises(ValueError, match="truncated or different"):
        load_kinetics_encoder(R2Plus1DFER(6), path)


def test_torchvisions_kinetics_file_loads_into_the_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models.video import r2plus1d_18

    source = r2plus1d_18(num_classes=400)  # the layout of torchvision's file, with random weights
    path = tmp_path / "r2plus1d_18.pth"
    torch.save(source.state_dict(), path)
    monkeypatch.setattr(r2plus1d, "KINETICS_SHA256_PREFIX", hashlib.sha256(path.read_bytes()).hexdigest()[:8])
    model = R2Plus1DFER(6)

    load_kinetics_encoder(model, path)

    torch.testing.assert_close(model.encoder[0][0].weight, source.stem[0].weight)
    torch.testing.assert_close(model.encoder[4][1].conv2[0][3].weight, source.layer4[1].conv2[0][3].weight)


def test_training_frames_are_drawn_at_random_in_time_order_and_evaluation_frames_evenly() -> None:
    rng = np.random.default_rng(0)
    drawn = [frame_indices(40, 16, rng) for _ in range(2)]

    assert all(len(set(d)) == 16 and (np.diff(d) > 0).all() and d.max() < 40 for d in drawn)
    assert not np.array_equal(*drawn)
    np.testing.assert_array_equal(frame_indices(31, 4), [0, 10, 20, 30])
    np.testing.assert_array_equal(frame_indices(3, 6, rng), [0, 0, 1, 1, 2, 2])  # short clips repeat frames


@pytest.fixture(scope="module")
def tiny_clips(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[FaceClips, FaceClips]:
    """Face crops (32 px) of 4 labelled tiny-world clips for training and 2 for dev."""
    labelled = [c for c in load_crema_d(tiny_world / "crema_d") if c.label is not None][:6]
    cached = extract_face_cubes([c.path for c in labelled], tmp_path_factory.mktemp("cubes"), size=32, workers=0)
    assert set(cached) == {c.clip_id for c in labelled}

    def clips(part: list) -> FaceClips:
        return FaceClips.load([cached[c.clip_id] for c in part], [c.label for c in part], size=32)

    return clips(labelled[:4]), clips(labelled[4:])


# 4 frames of 32 x 32 (the encoder's map is 1 x 2 x 2) keep a step to about a second on 2 cores.
SMALL = ClipSampling(frames=4, size=32)


def test_training_steps_on_tiny_world_clips_fit_them_and_the_centre_loss_does_not_collapse_the_network(
    tiny_clips: tuple[FaceClips, FaceClips],
) -> None:
    """With the paper's weights (l_SCL + l_CE), a centre loss that could zero the embedding through a dead
    ReLU would leave every clip the same logits and the cross-entropy stuck at log K: the network must fit
    4 clips instead."""
    torch.manual_seed(0)
    train, _ = tiny_clips
    model, centre = R2Plus1DFER(6), SparseCentreLoss(6)
    optimizer = torch.optim.Adam([*model.parameters(), *centre.parameters()], lr=1e-3)
    clips, labels = train.batch(range(4), SMALL.frames)
    assert clips.shape == (4, 3, 4, 32, 32) and 0.0 <= clips.min().item() <= clips.max().item() <= 1.0

    # (cross-entropy, centre loss) of the batch before each of 12 steps
    losses = [train_step(model, centre, optimizer, clips, labels, nn.CrossEntropyLoss(), 1.0) for _ in range(12)]

    assert sum(losses[-1]) < sum(losses[0])
    assert losses[-1][0] < 0.9 * math.log(6)
    assert model(clips).embedding.std(dim=0).max().item() > 1e-3  # clips still differ where the classifier reads


def test_fit_keeps_the_best_dev_epoch(tiny_clips: tuple[FaceClips, FaceClips]) -> None:
    train, dev = tiny_clips
    model, centre = R2Plus1DFER(6), SparseCentreLoss(6)

    history = fit_clips(model, centre, train, dev, SMALL, ClipTrainConfig(epochs=2, batch_size=4), progress=False)

    logits = torch.from_numpy(predict_logits(model, dev, SMALL.frames, batch_size=4))  # (N, 6)
    weighted = nn.CrossEntropyLoss(weight=class_weights(train.labels, 6))
    assert len(history.dev_loss) == 2 and logits.shape == (len(dev), 6)
    # The model left behind is the best epoch's: it scores the dev clips exactly as that epoch did.
    assert weighted(logits, torch.from_numpy(dev.labels)).item() == pytest.approx(min(history.dev_loss), rel=1e-5)
