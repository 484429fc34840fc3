"""Self-supervised adaptation of f()'s last blocks to one subject's faces (seed 003's representation learner).

FedAffect trains its encoder with SimCLR: two augmented views of each unlabeled image, and the NT-Xent
loss pulls the views of one image together and pushes the other images of the batch away. Here the
encoder is f() itself: MobileNetV2's earlier blocks stay frozen (the trunk) and only the last
`blocks` of `features` train (the tail), under a two-layer projection head as in SimCLR (Chen et al.,
2020). The tail and the head are what a federation averages (`fedfer.federation.adapt_f`); the
adapted f() is the original with its tail replaced, written as a weights file that every fedfer
command takes (`--weights`), so re-extraction, the central g() and v() and the paper's pipeline
run on it unchanged.

Augmentations are SimCLR's published ones, on the face crop: random resized crop (scale 0.08–1),
horizontal flip, colour jitter (0.8, 0.8, 0.8, 0.2) with p 0.8, grayscale with p 0.2, Gaussian blur
(kernel 10% of the side, σ 0.1–2) with p 0.5.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedfer.data.backbone import Backbone
from fedfer.data.encoder import FEATURE_DIM

PROJECTION_HIDDEN = 512  # SimCLR's head: FEATURE_DIM (1280) → 512 → ReLU → projection_dim
TAIL_PREFIX = "tail."
HEAD_PREFIX = "head."


@dataclass(frozen=True)
class ContrastiveConfig:
    """One client's local adaptation of f() per round."""

    blocks: int = 2  # last MobileNetV2 blocks trained (of 19 in `features`); the rest stay frozen
    epochs: int = 1  # passes over the subject's sampled frames per round
    batch_size: int = 32  # images per step (2 × views through the tail)
    lr: float = 1e-3  # Adam
    temperature: float = 0.5  # NT-Xent τ
    projection_dim: int = 128
    seed: int = 0


def simclr_augment(size: int) -> nn.Module:
    """SimCLR's augmentations of one uint8 (3, H, W) face crop, as torchvision composes them."""
    from torchvision.transforms import v2

    kernel = max(3, int(0.1 * size) // 2 * 2 + 1)  # odd, about 10% of the side
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5),
        ]
    )


def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """NT-Xent over a batch of N pairs (z1[i], z2[i]), each (N, D): the mean over the 2N views of the
    cross-entropy of finding its pair among the 2N − 1 other views, by cosine similarity / τ."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, D)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))  # a view is not its own pair
    n = len(z1)
    pairs = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, pairs)


class AdaptableEncoder(nn.Module):
    """f() split at `blocks` from the end: a frozen trunk, a trainable tail, pooling, and SimCLR's head."""

    def __init__(self, backbone: Backbone, config: ContrastiveConfig) -> None:
        super().__init__()
        features = backbone.encoder.features
        if not 1 <= config.blocks <= len(features):
            raise ValueError(f"blocks must be between 1 and {len(features)} (MobileNetV2's), got {config.blocks}")
        split = len(features) - config.blocks
        self.trunk = copy.deepcopy(features[:split]).requires_grad_(False).eval()
        self.tail = copy.deepcopy(features[split:]).requires_grad_(True)
        self.head = nn.Sequential(
            nn.Linear(FEATURE_DIM, PROJECTION_HIDDEN),
            nn.ReLU(inplace=True),
            nn.Linear(PROJECTION_HIDDEN, config.projection_dim),
        )
        generator = torch.Generator().manual_seed(config.seed)  # every client starts from the same head
        for layer in self.head:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=layer.in_features**-0.5, generator=generator)
                nn.init.zeros_(layer.bias)
        self.preprocess = backbone.preprocessor()

    def train(self, mode: bool = True) -> AdaptableEncoder:
        super().train(mode)
        self.trunk.eval()  # frozen: its BatchNorm statistics stay those of the weights
        return self

    def forward(self, crops: Tensor) -> Tensor:
        """(N, H, W, 3) uint8 → (N, projection_dim) projections."""
        with torch.no_grad():
            x = self.trunk(self.preprocess(crops).contiguous(memory_format=torch.channels_last))
        pooled = self.tail(x).mean(dim=(2, 3))  # (N, 1280): f()'s feature
        return self.head(pooled)

    def shared_state(self) -> dict[str, Tensor]:
        """What a federation averages: the tail's and the head's tensors (counters stay home)."""
        state = {TAIL_PREFIX + k: t for k, t in self.tail.state_dict().items()}
        state |= {HEAD_PREFIX + k: t for k, t in self.head.state_dict().items()}
        return {k: t.detach().float().clone() for k, t in state.items() if not k.endswith("num_batches_tracked")}

    def load_shared_state(self, state: dict[str, Tensor]) -> None:
        expected = set(self.shared_state())
        if set(state) != expected:
            raise ValueError(
                f"arrays do not match f()'s adapted blocks: missing {sorted(expected - set(state))[:5]}, "
                f"unexpected {sorted(set(state) - expected)[:5]}"
            )
        for prefix, module in ((TAIL_PREFIX, self.tail), (HEAD_PREFIX, self.head)):
            part = {k[len(prefix) :]: t for k, t in state.items() if k.startswith(prefix)}
            module.load_state_dict(part, strict=False)


def adapt_locally(encoder: AdaptableEncoder, crops: np.ndarray, config: ContrastiveConfig) -> float:
    """Train the tail and head on one subject's face crops (N, H, W, 3) uint8 for `config.epochs`;
    returns the mean NT-Xent loss of the last epoch. Batches of fewer than 2 images are skipped (a
    lone image has no negatives)."""
    if len(crops) < 2:
        raise ValueError(f"contrastive adaptation needs at least 2 face crops, got {len(crops)}")
    torch.manual_seed(config.seed)  # the augmentations draw from torch's global generator
    rng = np.random.default_rng(config.seed)
    augment = simclr_augment(crops.shape[1])
    images = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)  # (N, 3, H, W) uint8
    optimizer = torch.optim.Adam([*encoder.tail.parameters(), *encoder.head.parameters()], lr=config.lr)
    encoder.train()
    losses: list[float] = []
    for _ in range(config.epochs):
        losses = []
        order = rng.permutation(len(images))
        for start in range(0, len(order), config.batch_size):
            batch = images[order[start : start + config.batch_size]]
            if len(batch) < 2:
                continue
            views = [torch.stack([augment(image) for image in batch]).permute(0, 2, 3, 1) for _ in range(2)]
            loss = nt_xent(encoder(views[0]), encoder(views[1]), config.temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    encoder.eval()
    return float(np.mean(losses))


def adapted_backbone(backbone: Backbone, encoder: AdaptableEncoder) -> Backbone:
    """`backbone` with its last blocks replaced by the encoder's tail (frozen again; ids unchanged until saved)."""
    encoder_copy = copy.deepcopy(backbone.encoder)
    split = len(encoder_copy.features) - len(encoder.tail)
    for offset, block in enumerate(encoder.tail):
        encoder_copy.features[split + offset].load_state_dict(block.state_dict())
    encoder_copy.requires_grad_(False).eval()
    return Backbone(encoder_copy, backbone.backbone_id, backbone.weights_sha256, backbone.mean, backbone.std)
