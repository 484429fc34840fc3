"""f(): the frozen frame encoder every feature comes from, and the width of what it returns.

It belongs to the data side: f() is never trained, it turns face crops into the (T, 1280) feature
sequences the feature store caches (`fedfer.data.backbone` loads its weights and runs it); the
trained heads g() and v() (`fedfer.model.heads`) read those features.
"""

from __future__ import annotations

from torch import Tensor, nn

FEATURE_DIM = 1280  # MobileNetV2 pooled feature width


class FrameEncoder(nn.Module):
    """f(): MobileNetV2 convolutional features + global average pooling, frozen.

    Input: (N, 3, H, W) float images normalised as the weights expect; output (N, 1280).
    """

    def __init__(self) -> None:
        # Imported here: the heads (all a ClientApp needs) should not pay for importing torchvision.
        from torchvision.models import mobilenet_v2

        super().__init__()
        self.features = mobilenet_v2(weights=None).features
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, images: Tensor) -> Tensor:
        return self.pool(self.features(images)).flatten(1)  # (N, 1280)
