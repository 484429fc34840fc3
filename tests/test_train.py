"""Central training: it learns, it saves and loads exactly, it weights rare classes, it resumes."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from fedfer.config import TrainConfig
from fedfer.model.checkpoint import CheckpointError, HeadCard, load_head, save_head
from fedfer.model.inference import predict_proba
from fedfer.model.training import LabelledSet, class_weights, fit, train_head


def separable_clips(n: int, num_classes: int = 4, seed: int = 0) -> LabelledSet:
    """Sequences whose frames carry a class direction plus noise, in varying lengths."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(num_classes, 1280))
    labels = np.arange(n) % num_classes
    clips = [np.abs(directions[y] + rng.normal(size=(rng.integers(4, 10), 1280))).astype(np.float16) for y in labels]
    return LabelledSet(clips, labels)


def test_vfer_training_reduces_loss_and_fits_a_small_corpus() -> None:
    data = separable_clips(48)
    config = TrainConfig(stage="vfer", num_classes=4, epochs=6, batch_size=8)
    model, history = train_head(data, None, config, progress=False)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    accuracy = (predict_proba(model, data.inputs).argmax(1) == data.labels).mean()
    assert accuracy > 0.9


def test_best_dev_epoch_is_kept() -> None:
    config = TrainConfig(stage="ifer", num_classes=4, epochs=5, batch_size=8)
    rng = np.random.default_rng(1)
    train = LabelledSet(rng.normal(size=(40, 1280)).astype(np.float16), np.arange(40) % 4)
    dev = LabelledSet(rng.normal(size=(20, 1280)).astype(np.float16), np.arange(20) % 4)  # pure noise: dev loss rises
    _, history = train_head(train, dev, config, progress=False)
    assert history.best_epoch == int(np.argmin(history.dev_loss))


def test_saved_and_loaded_model_predicts_identically(tmp_path) -> None:
    data = separable_clips(16)
    model, _ = train_head(data, None, TrainConfig(stage="vfer", num_classes=4, epochs=1, batch_size=8), progress=False)
    path = tmp_path / "v.pt"
    save_head(path, model, HeadCard(stage="vfer", classes=("ANG", "HAP", "NEU", "SAD"), backbone_id="bb"))
    loaded, card = load_head(path, stage="vfer", backbone_id="bb", classes=("ANG", "HAP", "NEU", "SAD"))
    np.testing.assert_array_equal(predict_proba(model, data.inputs), predict_proba(loaded, data.inputs))
    assert card.backbone_id == "bb"


def test_checkpoint_mismatch_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "g.pt"
    save_head(
        path,
        train_head(
            LabelledSet(np.ones((4, 1280), np.float16), [0, 1, 2, 3]),
            None,
            TrainConfig(stage="ifer", num_classes=4, epochs=1),
            progress=False,
        )[0],
        HeadCard(stage="ifer", classes=("ANG", "HAP", "NEU", "SAD"), backbone_id="offline-a"),
    )
    with pytest.raises(CheckpointError, match="backbone 'offline-a'"):
        load_head(path, stage="ifer", backbone_id="imagenet-b")
    with pytest.raises(CheckpointError, match="classes"):
        load_head(path, stage="ifer", classes=("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"))
    with pytest.raises(CheckpointError, match="'ifer' head"):
        load_head(path, stage="vfer")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_head(tmp_path / "missing.pt", stage="ifer")


def test_class_weights_favour_the_rare_class() -> None:
    weights = class_weights(np.array([0] * 90 + [1] * 10), 2)
    assert weights[1] > weights[0]
    torch.testing.assert_close(weights, torch.tensor([100 / 180, 100 / 20]))
    # the rare class' loss term counts more than the frequent one's
    loss = torch.nn.CrossEntropyLoss(weight=weights, reduction="none")
    logits = torch.zeros(2, 2)
    per_item = loss(logits, torch.tensor([0, 1]))
    assert per_item[1] > per_item[0]


def test_interrupted_training_resumes_to_the_same_result(tmp_path) -> None:
    data = separable_clips(24)
    config = TrainConfig(stage="vfer", num_classes=4, epochs=4, batch_size=8)
    reference, _ = train_head(data, None, config, progress=False)

    class Interrupt(Exception):
        pass

    def stop_after_two(epoch: int, *_: float) -> None:
        if epoch == 1:
            raise Interrupt

    state = tmp_path / "state.pt"
    torch.manual_seed(config.seed)
    from fedfer.model.heads import build_head

    with pytest.raises(Interrupt):
        fit(build_head("vfer", 4), data, None, config, state_path=state, progress=False, on_epoch=stop_after_two)
    torch.manual_seed(config.seed)
    resumed = build_head("vfer", 4)
    history = fit(resumed, data, None, config, state_path=state, progress=False)
    assert len(history.train_loss) == 4
    np.testing.assert_allclose(
        predict_proba(resumed, data.inputs), predict_proba(reference, data.inputs), rtol=1e-5, atol=1e-6
    )
    # a different configuration does not reuse the state
    assert fit(
        build_head("vfer", 4), data, None, replace(config, epochs=1), state_path=state, progress=False
    ).train_loss


def test_a_checkpoint_keeps_its_batchnorm_convention_and_old_cards_load_as_torch(tmp_path) -> None:
    data = separable_clips(16)
    for style in ("keras", "torch"):
        model, _ = train_head(
            data, None, TrainConfig(stage="vfer", num_classes=4, epochs=1, batchnorm=style), progress=False
        )
        save_head(
            tmp_path / f"{style}.pt",
            model,
            HeadCard(stage="vfer", classes=("ANG", "HAP", "NEU", "SAD"), backbone_id="bb"),
        )
        loaded, card = load_head(tmp_path / f"{style}.pt", stage="vfer")
        assert card.batchnorm == style
        np.testing.assert_array_equal(predict_proba(model, data.inputs), predict_proba(loaded, data.inputs))
    saved = torch.load(tmp_path / "torch.pt", weights_only=True)
    del saved["card"]["batchnorm"]  # a card written before the setting existed
    torch.save(saved, tmp_path / "old.pt")
    assert load_head(tmp_path / "old.pt", stage="vfer")[1].batchnorm == "torch"


def test_restore_best_keeps_the_best_dev_epoch_and_can_be_turned_off() -> None:
    train, dev = separable_clips(32, seed=1), separable_clips(16, seed=2)
    config = TrainConfig(stage="ifer", num_classes=4, epochs=6, batch_size=8, lr=0.05)
    frames = LabelledSet(np.stack([c[0] for c in train.inputs]), train.labels)
    dev_frames = LabelledSet(np.stack([c[0] for c in dev.inputs]), dev.labels)
    kept, history = train_head(frames, dev_frames, config, progress=False)
    last, _ = train_head(frames, dev_frames, replace(config, restore_best=False), progress=False)
    loss = torch.nn.CrossEntropyLoss(weight=class_weights(dev.labels, 4))

    def dev_loss(model) -> float:
        return float(
            loss(torch.log(torch.from_numpy(predict_proba(model, dev_frames.inputs))), torch.from_numpy(dev.labels))
        )

    assert history.best_epoch < config.epochs - 1  # the best epoch is not the last: the two settings differ
    assert dev_loss(kept) == pytest.approx(min(history.dev_loss), rel=1e-4)
    assert dev_loss(last) == pytest.approx(history.dev_loss[-1], rel=1e-4)
