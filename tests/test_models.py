"""f(), g(), v(): sizes as in the paper, and padding that never changes v()'s answer."""

import pytest
import torch

from fedfer.config import BATCHNORM_CHOICES
from fedfer.data.encoder import FrameEncoder
from fedfer.model.heads import BATCHNORM, IFERHead, VFERHead, batchnorm_style, pad_sequences, parameter_table


def test_parameter_counts_match_the_paper() -> None:
    rows = {(r.block, r.num_classes): r for r in parameter_table((4, 6))}
    assert rows[("f", 0)].paper_trainable == 2_223_872
    assert rows[("g", 6)].paper_trainable == 662_534
    assert rows[("v", 6)].paper_trainable == 208_582
    assert rows[("v", 6)].paper_non_trainable == 2_944
    assert rows[("v", 6)].torch_parameters == 208_838  # two LSTM bias vectors in PyTorch


def test_frame_encoder_gives_1280_features() -> None:
    f = FrameEncoder().eval()
    with torch.inference_mode():
        out = f(torch.rand(2, 3, 96, 96))
    assert out.shape == (2, 1280)


def test_padding_does_not_change_vfer_output() -> None:
    torch.manual_seed(0)
    v = VFERHead(6)
    # Give BatchNorm non-trivial running statistics so eval mode is not the identity.
    v.train()
    for _ in range(3):
        batch, lengths = pad_sequences([torch.randn(n, 1280) for n in (5, 9, 7)])
        v(batch, lengths)
    v.eval()
    clip = torch.randn(6, 1280)
    with torch.no_grad():
        alone = v(clip.unsqueeze(0))
        padded, lengths = pad_sequences([clip, torch.randn(20, 1280)])
        in_batch = v(padded, lengths)[0]
        more_padding = v(torch.cat([torch.zeros(1, 30, 1280), clip.unsqueeze(0)], dim=1))
    torch.testing.assert_close(alone[0], in_batch, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(alone, more_padding, rtol=1e-5, atol=1e-6)


def test_padded_frames_do_not_touch_training_statistics() -> None:
    torch.manual_seed(0)
    clips = [torch.randn(n, 1280) for n in (4, 8)]
    a, b = VFERHead(6).train(), VFERHead(6).train()
    b.load_state_dict(a.state_dict())
    short, lengths = pad_sequences(clips)
    long = torch.cat([torch.zeros(2, 10, 1280), short], dim=1)
    a(short, lengths)
    b(long, lengths)
    torch.testing.assert_close(a.frame[0].running_mean, b.frame[0].running_mean)


def test_ifer_head_scores_frames_of_a_clip() -> None:
    g = IFERHead(4).eval()
    assert g(torch.randn(7, 1280)).shape == (7, 4)


def test_batchnorm_follows_keras_by_default_and_torch_on_request() -> None:
    """The paper's Keras BatchNorm keeps 99% of its running statistics per step (eps 1e-3)."""
    for head in (IFERHead(6), VFERHead(6)):
        layers = [m for m in head.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        assert layers and all((m.momentum, m.eps) == (0.01, 1e-3) for m in layers)
        assert batchnorm_style(head) == "keras"
    torch_head = VFERHead(6, batchnorm_style="torch")
    assert batchnorm_style(torch_head) == "torch"
    assert all((m.momentum, m.eps) == (0.1, 1e-5) for m in torch_head.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert set(BATCHNORM) == set(BATCHNORM_CHOICES)


def test_keras_statistics_move_far_less_on_a_clients_few_steps() -> None:
    """16 training steps on a subject's clips: PyTorch's running mean ends about 81% of the way to the
    subject's own mean, Keras' about 15% (1 - 0.9**16 and 1 - 0.99**16)."""
    shift = 5.0
    for style, expected in (("torch", 1 - 0.9**16), ("keras", 1 - 0.99**16)):
        head = IFERHead(4, batchnorm_style=style).train()
        for _ in range(16):
            head(torch.randn(32, 1280) + shift)
        moved = head.net[0].running_mean.mean().item() / shift
        assert moved == pytest.approx(expected, abs=0.03), style
