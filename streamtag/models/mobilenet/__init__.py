"""EfficientAT MobileNetV3 (`mn*_as`): the `mn` family's registry entries (the EfficientAT AudioSet release
table), config and builder, without torch; the network is in `mobilenet.network`, imported when one is built.

The EfficientAT config, entry and builder helpers here are shared with `dymn`. The network's names
(`MobileNetAT`, `embedding_dim`, ...) are also reachable here, importing torch on first use.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..mel import EfficientATMelSettings, NumpyEfficientATMel
from ..family import Family, network_names
from ..spec import ModelSpec

if TYPE_CHECKING:
    from ..frontends import EfficientATMel
    from ..labels import Labels
    from ..model import Network

EFFICIENTAT_RELEASE = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/"
EFFICIENTAT_LICENSE = "MIT (EfficientAT, (c) 2022 Florian Schmid)"
_MEL = EfficientATMelSettings()


@dataclass(frozen=True)
class EfficientATConfig:
    """Architecture and front-end of an EfficientAT release: width multiplier and `AugmentMelSTFT` settings."""

    width_mult: float
    sample_rate: int = _MEL.sample_rate
    n_fft: int = _MEL.n_fft
    win_length: int = _MEL.win_length
    hop_length: int = _MEL.hop_length
    n_mels: int = _MEL.n_mels

    def mel_settings(self) -> EfficientATMelSettings:
        """The log-mel settings both front-ends (torch and numpy) are built from."""
        return EfficientATMelSettings(sample_rate=self.sample_rate, n_fft=self.n_fft, win_length=self.win_length,
                                      hop_length=self.hop_length, n_mels=self.n_mels)

    def frontend(self) -> "EfficientATMel":
        from ..frontends import EfficientATMel
        return EfficientATMel.from_settings(self.mel_settings())

    def numpy_frontend(self) -> NumpyEfficientATMel:
        """The same log-mel in numpy (for the OpenVINO export run without torch)."""
        return NumpyEfficientATMel(self.mel_settings())


def efficientat_entry(family: str, name: str, width: float, emb: int, file: str, params: float,
                      macs: float | None, mAP: float, sha256: str | None = None, **frontend) -> ModelSpec:
    """A registry entry of the EfficientAT release (32 kHz, 527 classes, downloads from its GitHub release)."""
    config = EfficientATConfig(width_mult=width, **frontend)
    return ModelSpec(name=name, family=family, config=config, file_name=file, url=EFFICIENTAT_RELEASE + file,
                     sha256=sha256, license=EFFICIENTAT_LICENSE, sample_rate=config.sample_rate, embedding_dim=emb,
                     min_samples=config.hop_length, params_millions=params, macs_billions=macs, mAP=mAP)


def efficientat_builder(architecture: Callable[[], "Callable[[float, int], Network]"]):
    """The builder of an EfficientAT family: its mel front-end and `architecture()(width, classes)`, loaded strictly
    (`architecture` imports the network class when a model is built)."""
    def build(spec: ModelSpec, checkpoint: object | None, source: str, labels: "Labels"):
        from ..weights import load_into, state_dict_of
        network = architecture()(spec.config.width_mult, spec.num_classes)
        if checkpoint is not None:
            load_into(network, state_dict_of(checkpoint, source), source, spec.name)
        return spec.config.frontend(), network
    return build


def _network_class():
    from .network import MobileNetAT
    return MobileNetAT


__getattr__ = network_names(__name__)  # the network module's names, importing torch on first use


def _mn(*args, **kwargs) -> ModelSpec:
    return efficientat_entry("mn", *args, **kwargs)


# The EfficientAT AudioSet release table (README of fschmid56/EfficientAT and its release files).
FAMILY = Family("mn", efficientat_builder(_network_class), (
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
), exportable=True)
