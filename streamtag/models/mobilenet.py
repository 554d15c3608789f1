"""EfficientAT MobileNetV3 (`mn*_as`), laid out so the released checkpoints load with strict=True.

Declares the `mn` family: its registry entries (the EfficientAT AudioSet release table) and its
builder. The EfficientAT front-end and entry helpers here are shared with `dymn`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor, nn

from .frontends import EfficientATMel
from .labels import Labels
from .model import Network
from .registry import Family, ModelSpec
from .weights import load_into, state_dict_of

EFFICIENTAT_RELEASE = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/"
EFFICIENTAT_LICENSE = "MIT (EfficientAT, (c) 2022 Florian Schmid)"

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


@dataclass(frozen=True)
class EfficientATConfig:
    """Architecture and front-end of an EfficientAT release: width multiplier and `AugmentMelSTFT` settings."""

    width_mult: float
    sample_rate: int = 32000
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    n_mels: int = 128

    def frontend(self) -> EfficientATMel:
        return EfficientATMel(sample_rate=self.sample_rate, n_fft=self.n_fft, win_length=self.win_length,
                              hop_length=self.hop_length, n_mels=self.n_mels)


def efficientat_entry(family: str, name: str, width: float, emb: int, file: str, params: float,
                      macs: float | None, mAP: float, sha256: str | None = None, **frontend) -> ModelSpec:
    """A registry entry of the EfficientAT release (32 kHz, 527 classes, downloads from its GitHub release)."""
    config = EfficientATConfig(width_mult=width, **frontend)
    return ModelSpec(name=name, family=family, config=config, file_name=file, url=EFFICIENTAT_RELEASE + file,
                     sha256=sha256, license=EFFICIENTAT_LICENSE, sample_rate=config.sample_rate, embedding_dim=emb,
                     min_samples=config.hop_length, params_millions=params, macs_billions=macs, mAP=mAP)


def efficientat_builder(architecture: Callable[[float, int], Network]):
    """The builder of an EfficientAT family: its mel front-end and `architecture(width, classes)`, loaded strictly."""
    def build(spec: ModelSpec, checkpoint: object | None, source: str, labels: Labels):
        network = architecture(spec.config.width_mult, spec.num_classes)
        if checkpoint is not None:
            load_into(network, state_dict_of(checkpoint, source), source, spec.name)
        return spec.config.frontend(), network
    return build


def _mn(*args, **kwargs) -> ModelSpec:
    return efficientat_entry("mn", *args, **kwargs)


# The EfficientAT AudioSet release table (README of fschmid56/EfficientAT and its release files).
FAMILY = Family("mn", efficientat_builder(MobileNetAT), (
    _mn("mn01_as", 0.1, 96, "mn01_as_mAP_298.pt", 0.124, None, 29.8),
    _mn("mn02_as", 0.2, 192, "mn02_as_mAP_378.pt", 0.325, None, 37.8),
    _mn("mn04_as", 0.4, 384, "mn04_as_mAP_432.pt", 0.983, 0.11, 43.2,
        "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"),
    _mn("mn05_as", 0.5, 480, "mn05_as_mAP_443.pt", 1.43, 0.16, 44.3,
        "97f00bb717ce957dbdf60c26d4de8b161dd7c2593fbe6424859fad7e5569fd7f"),
    _mn("mn10_as", 1.0, 960, "mn10_as_mAP_471.pt", 4.88, 0.54, 47.1,
        "0bd7dc2443af498c289a2e739f02ebb515d6aa3fd3ab9db539c86123ae368a4e"),
    _mn("mn20_as", 2.0, 1920, "mn20_as_mAP_478.pt", 17.91, 2.06, 47.8),
    _mn("mn30_as", 3.0, 2880, "mn30_as_mAP_482.pt", 39.09, 4.55, 48.2),
    _mn("mn40_as", 4.0, 3840, "mn40_as_mAP_484.pt", 68.43, 8.03, 48.4,
        "09624dca1c53128255c65c5a52ff49ae91bb01fe17f0e13b3c3a0c9f24a8478b"),
    _mn("mn40_as_ext", 4.0, 3840, "mn40_as_ext_mAP_487.pt", 68.43, 8.03, 48.7),
    _mn("mn40_as_no_im_pre", 4.0, 3840, "mn40_as_no_im_pre_mAP_483.pt", 68.43, 8.03, 48.3),
    # hop suffix = STFT hop in ms at 32 kHz
    _mn("mn10_as_hop_15", 1.0, 960, "mn10_as_hop_15_mAP_463.pt", 4.88, 0.36, 46.3, hop_length=480),
    _mn("mn10_as_hop_20", 1.0, 960, "mn10_as_hop_20_mAP_456.pt", 4.88, 0.27, 45.6, hop_length=640),
    _mn("mn10_as_hop_25", 1.0, 960, "mn10_as_hop_25_mAP_447.pt", 4.88, 0.22, 44.7, hop_length=800),
    _mn("mn10_as_mels_40", 1.0, 960, "mn10_as_mels_40_mAP_453.pt", 4.88, 0.21, 45.3, n_mels=40),
    _mn("mn10_as_mels_64", 1.0, 960, "mn10_as_mels_64_mAP_461.pt", 4.88, 0.27, 46.1, n_mels=64),
    _mn("mn10_as_mels_256", 1.0, 960, "mn10_as_mels_256_mAP_474.pt", 4.88, 1.08, 47.4, n_mels=256),
))
