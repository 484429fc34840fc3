"""Seed 004's end-to-end video FER network: R(2+1)D-18 → spatio-temporal attention → two heads.

Singh et al. (seed 004) train a 3D CNN on raw face clips: torchvision's R(2+1)D-18 as encoder, a
self-attention block over space and over time, then a classifier (cross-entropy) and a sparse centre
loss whose per-element weights come from a small attention network. fedfer keeps it as the heavy
baseline that prices its own choice, a frozen per-frame MobileNetV2 f() and a 208K-parameter v():
everything here trains end to end, so a client federating it would move and train the whole network.

Input: a clip of T face crops, (B, 3, T, H, W) float RGB in [0, 1]; the network itself subtracts
Kinetics-400's mean and divides by its std, which is what torchvision's pre-trained weights expect.
The paper samples T = 16 frames of 112 × 112 crops (`fedfer.data.face_cubes.ClipSampling`).
Shapes below are for that input:

    encoder (stem, layer1-4)  (B, 3, 16, 112, 112) → f (B, 512, 2, 7, 7)
    attention                 f → p = f + γ·(s(f) + d(f))     (B, 512, 2, 7, 7)
    pool + embed              p → (B, 512) → e (B, 256)       the deep feature of the centre loss
    classifier                e → logits (B, K)               cross-entropy
    element attention         pool(f) → FC1-FC3 → (B, 256, 2) → softmax → w (B, 256)

Where the paper is silent or ambiguous, the choice is commented where it is made.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import torch
from torch import Tensor, nn

ENCODER_CHANNELS = 512  # R(2+1)D-18's last stage
EMBEDDING_DIM = 256  # the paper's 256 attention weights, so its centre-loss feature has 256 elements
COMPRESSION = 8  # the paper's "eight times compression" of queries and keys
# The element-attention MLP (the paper's FC1-FC3): widths after the pooled 512 encoder channels.
ELEMENT_MLP: tuple[int, ...] = (256, 128, 64)
# torchvision's normalisation for its Kinetics-400 video weights (R2Plus1D_18_Weights.KINETICS400_V1).
KINETICS_MEAN: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
KINETICS_STD: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)
KINETICS_URL = "https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth"
KINETICS_FILE = KINETICS_URL.rsplit("/", 1)[1]
KINETICS_SHA256_PREFIX = "91a641e6"  # torchvision names its files after the first digits of their SHA-256


class SpatioTemporalAttention(nn.Module):
    """p(f) = f + γ·(s(f) + d(f)): self-attention over the H'×W' positions of each time step (s) and
    over the D time steps of each position (d), seed 004's Equations 1-3.

    Queries and keys are 1×1×1 convolutions compressed `compression`-fold, values keep every channel;
    each branch has its own three projections (Q_S, K_S, V_S and Q_D, K_D, V_D in the paper). γ starts
    at 0, so the block starts as the identity and a pre-trained encoder's features pass unchanged until
    the attention has learned something (the convention of the self-attention GANs it follows).
    The paper's Softmax(Q Kᵀ) has no 1/√d scaling, and neither has this one.
    """

    def __init__(self, channels: int = ENCODER_CHANNELS, compression: int = COMPRESSION) -> None:
        super().__init__()
        if channels % compression:
            raise ValueError(f"channels ({channels}) must be divisible by compression ({compression})")
        reduced = channels // compression

        def projection(width: int) -> nn.Conv3d:
            return nn.Conv3d(channels, width, kernel_size=1)

        self.spatial = nn.ModuleDict({"q": projection(reduced), "k": projection(reduced), "v": projection(channels)})
        self.temporal = nn.ModuleDict({"q": projection(reduced), "k": projection(reduced), "v": projection(channels)})
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, f: Tensor) -> Tensor:
        b, c, d, h, w = f.shape  # (B, C, D, H', W')

        def by_step(x: Tensor) -> Tensor:  # (B, c, D, H', W') → (B·D, H'W', c): each time step's positions
            return x.permute(0, 2, 3, 4, 1).reshape(b * d, h * w, x.shape[1])

        def by_position(x: Tensor) -> Tensor:  # (B, c, D, H', W') → (B·H'W', D, c): each position's steps
            return x.permute(0, 3, 4, 2, 1).reshape(b * h * w, d, x.shape[1])

        s = _attend(*(by_step(self.spatial[n](f)) for n in "qkv"))  # (B·D, H'W', C)
        s = s.reshape(b, d, h, w, c).permute(0, 4, 1, 2, 3)  # (B, C, D, H', W')
        t = _attend(*(by_position(self.temporal[n](f)) for n in "qkv"))  # (B·H'W', D, C)
        t = t.reshape(b, h, w, d, c).permute(0, 4, 3, 1, 2)  # (B, C, D, H', W')
        return f + self.gamma * (s + t)


def _attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Softmax(Q Kᵀ) V within each group: q, k (G, N, c'), v (G, N, C) → (G, N, C)."""
    return torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v


class ElementAttention(nn.Module):
    """The centre loss's weights w (B, d), one per element of the deep feature, 0 < w ≤ 1.

    The paper passes the encoder features through FC1-FC3 and a 2×256 FC layer with a softmax, as
    the deep attentive centre loss it cites does: each element gets a two-way softmax and keeps one
    of the two probabilities. Left as it is, nothing stops every weight from sinking towards 0,
    which switches the centre loss off (its gradient pushes all weights down); dividing by the
    largest weight of each clip keeps the paper's 0 < w ≤ 1 while one element always counts fully,
    so the attention can only choose which elements matter, not whether any does.
    """

    def __init__(self, channels: int = ENCODER_CHANNELS, elements: int = EMBEDDING_DIM) -> None:
        super().__init__()
        widths = (channels, *ELEMENT_MLP)
        layers: list[nn.Module] = []
        for width_in, width_out in pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.ReLU(inplace=True)]
        self.mlp = nn.Sequential(*layers)
        self.pairs = nn.Linear(widths[-1], 2 * elements)
        self.elements = elements

    def forward(self, pooled: Tensor) -> Tensor:
        pairs = self.pairs(self.mlp(pooled)).view(-1, self.elements, 2)  # (B, d, 2)
        a = torch.softmax(pairs, dim=-1)[..., 0]  # (B, d) in (0, 1)
        return a / a.amax(dim=1, keepdim=True)  # (B, d) in (0, 1]


@dataclass(frozen=True)
class Outputs:
    """What one forward pass gives the two losses."""

    logits: Tensor  # (B, K)
    embedding: Tensor  # (B, 256) deep features e, pulled towards their class centre
    weights: Tensor  # (B, 256) the centre loss's element weights w


class R2Plus1DFER(nn.Module):
    """Seed 004's network (see the module docstring for the shapes).

    num_classes: K, the task's classes. The encoder starts from scratch; `load_kinetics_encoder`
    gives it torchvision's Kinetics-400 weights where the file is at hand.
    """

    def __init__(self, num_classes: int) -> None:
        # Imported here, as in heads.py: code that only needs the losses does not pay for torchvision.
        from torchvision.models.video import r2plus1d_18

        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        net = r2plus1d_18(weights=None)
        self.encoder = nn.Sequential(net.stem, net.layer1, net.layer2, net.layer3, net.layer4)
        self.attention = SpatioTemporalAttention()
        self.pool = nn.AdaptiveAvgPool3d(1)
        # The paper classifies from the pooled attention output and feeds a 256-element feature to the
        # centre loss. Here both read one 256-d embedding: a projection read only by the centre loss
        # could shrink to zero and satisfy it without changing what is classified. The embedding is
        # linear: behind a ReLU, the centre loss at the paper's weight 1 (centres starting at 0) drove
        # every unit dead within a few steps, every clip got the same logits, and training on the
        # small world stayed at chance (cross-entropy log K from the first epoch).
        self.embed = nn.Linear(ENCODER_CHANNELS, EMBEDDING_DIM)
        self.classifier = nn.Linear(EMBEDDING_DIM, num_classes)
        self.element_attention = ElementAttention()
        self.register_buffer("mean", torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1), persistent=False)

    def forward(self, clips: Tensor) -> Outputs:
        if clips.dim() != 5 or clips.shape[1] != 3:
            raise ValueError(f"expected clips of shape (B, 3, T, H, W), got {tuple(clips.shape)}")
        f = self.encoder((clips - self.mean) / self.std)  # (B, 512, T/8, H/16, W/16)
        p = self.attention(f)  # (B, 512, T/8, H/16, W/16)
        embedding = self.embed(self.pool(p).flatten(1))  # (B, 256)
        weights = self.element_attention(self.pool(f).flatten(1))  # (B, 256)
        return Outputs(self.classifier(embedding), embedding, weights)


class SparseCentreLoss(nn.Module):
    """l_SCL = ½ · mean over clips of Σ_j w_j · (e_j − c_{y, j})², seed 004's Equation 4.

    The centres c (K, d) are parameters trained by the same optimizer as the network (the cited deep
    attentive centre loss updates them by a hand-written gradient with the same effect). They start at
    0; each moves towards the weighted mean of its class's features.
    """

    def __init__(self, num_classes: int, dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.centres = nn.Parameter(torch.zeros(num_classes, dim))

    def forward(self, embedding: Tensor, weights: Tensor, labels: Tensor) -> Tensor:
        squared = (embedding - self.centres[labels]).pow(2)  # (B, d)
        return 0.5 * (weights * squared).sum(dim=1).mean()


def kinetics_weights_path() -> Path:
    """Where torchvision keeps its R(2+1)D-18 Kinetics-400 file (torch.hub's checkpoints folder)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / KINETICS_FILE


def load_kinetics_encoder(model: R2Plus1DFER, path: Path | None = None) -> Path:
    """Load torchvision's Kinetics-400 R(2+1)D-18 weights into `model.encoder`; returns the file used.

    Nothing is downloaded: fedfer runs on machines without internet, so a missing file is an error
    naming where it was looked for and how to bring it. The file is checked against the SHA-256 prefix
    in its name (as torch.hub does), so a truncated copy is refused rather than half loaded.
    """
    path = Path(path) if path is not None else kinetics_weights_path()
    remedy = (
        f'Download {KINETICS_URL} (120 MB) on a machine with internet, e.g. with `python -c "from '
        "torchvision.models.video import r2plus1d_18, R2Plus1D_18_Weights as W; "
        'r2plus1d_18(weights=W.KINETICS400_V1)"`, which saves it under ~/.cache/torch/hub/checkpoints/, '
        f"and copy it to {path}; or train from scratch."
    )
    if not path.is_file():
        raise FileNotFoundError(f"no R(2+1)D-18 Kinetics-400 weights at {path}. {remedy}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(KINETICS_SHA256_PREFIX):
        raise ValueError(
            f"{path} has SHA-256 {digest[:16]}…, not torchvision's {KINETICS_FILE} "
            f"({KINETICS_SHA256_PREFIX}…): a truncated or different file. {remedy}"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    # torchvision's keys are stem.*, layer1.* … layer4.*, fc.*; the encoder numbers them 0-4.
    prefixes = {name: str(i) for i, name in enumerate(("stem", "layer1", "layer2", "layer3", "layer4"))}
    encoder = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head in prefixes:
            encoder[f"{prefixes[head]}.{rest}"] = value
    model.encoder.load_state_dict(encoder)  # strict: a file of another architecture fails here, by key
    return path
