"""The EfficientAT MobileNetV3 network (`mn*_as`), laid out so the released checkpoints load with strict=True."""
from __future__ import annotations

from torch import Tensor, nn

from ..model import Network

# MobileNetV3-Large rows: kernel, expanded, out, squeeze-excitation, hardswish, stride
BLOCKS = (
    (3, 16, 16, False, False, 1), (3, 64, 24, False, False, 2), (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2), (5, 120, 40, True, False, 1), (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2), (3, 200, 80, False, True, 1), (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1), (3, 480, 112, True, True, 1), (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2), (5, 960, 160, True, True, 1), (5, 960, 160, True, True, 1),
)
BN_EPS, BN_MOMENTUM = 1e-3, 0.01


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never dropping more than 10%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def embedding_dim(width_mult: float) -> int:
    """Size of the embedding (the last conv's channels) at a width multiplier."""
    return 6 * make_divisible(160 * width_mult)


class ConvBNAct(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> optional activation; keys `0.weight`, `1.*`."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.Hardswish) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel SE: mean over (F, T) -> fc1 -> ReLU -> fc2 -> sigmoid -> scale."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3))
        s = self.fc2(self.fc1(s).relu()).sigmoid()
        return x * s[:, :, None, None]


class ConcurrentSE(nn.Module):
    """EfficientAT's wrapper around one channel-SE branch (max over a single branch is identity)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([SqueezeExcitation(channels, make_divisible(channels // 4))])

    def forward(self, x: Tensor) -> Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    """[1x1 expand] -> depthwise kxk -> [SE] -> 1x1 project, + input when shapes allow."""

    def __init__(self, c_in: int, kernel: int, expanded: int, c_out: int, se: bool, hs: bool,
                 stride: int) -> None:
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(ConvBNAct(c_in, expanded, 1, act=act))
        layers.append(ConvBNAct(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if se:
            layers.append(ConcurrentSE(expanded))
        layers.append(ConvBNAct(expanded, c_out, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        return y + x if self.residual else y


class MobileNetAT(Network):
    """EfficientAT `mn` network: mel [B, 1, F, T] -> (logits [B, classes], embedding [B, D])."""

    freezable = True
    exportable = True

    def __init__(self, width_mult: float = 1.0, num_classes: int = 527, dropout: float = 0.2) -> None:
        super().__init__()
        ch = lambda c: make_divisible(c * width_mult)  # noqa: E731
        c_in = ch(16)
        layers: list[nn.Module] = [ConvBNAct(1, c_in, 3, 2)]
        for kernel, expanded, c_out, se, hs, stride in BLOCKS:
            layers.append(InvertedResidual(c_in, kernel, ch(expanded), ch(c_out), se, hs, stride))
            c_in = ch(c_out)
        self.embedding_dim = 6 * c_in
        layers.append(ConvBNAct(c_in, self.embedding_dim, 1))
        self.features = nn.Sequential(*layers)
        hidden = ch(1280)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
            nn.Linear(self.embedding_dim, hidden), nn.Hardswish(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        pooled = self.classifier[1](self.classifier[0](self.features(mel)))  # the embedding
        x = pooled
        for layer in self.classifier[2:]:
            x = layer(x)
        return x, pooled
