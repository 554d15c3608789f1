"""The model registry: one entry per released model, with every fact the rest of streamtag needs."""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field

from ..errors import UnknownModelError

EFFICIENTAT_RELEASE = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/"
EFFICIENTAT_LICENSE = "MIT (EfficientAT, (c) 2022 Florian Schmid)"


@dataclass(frozen=True)
class MelSpec:
    """Front-end settings of an EfficientAT model (see `frontends.EfficientATMel`)."""

    sample_rate: int = 32000
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    n_mels: int = 128


@dataclass(frozen=True)
class ModelSpec:
    """Everything known about one released model."""

    name: str
    family: str  # selects the architecture module: "mn" or "dymn"
    width_mult: float
    embedding_dim: int
    file_name: str
    url: str
    sha256: str | None
    frontend: MelSpec = field(default_factory=MelSpec)
    params_millions: float | None = None
    macs_billions: float | None = None
    mAP: float | None = None
    license: str = EFFICIENTAT_LICENSE
    num_classes: int = 527

    @property
    def sample_rate(self) -> int:
        return self.frontend.sample_rate

    @property
    def min_samples(self) -> int:
        """Shortest window or hop accepted: one STFT hop."""
        return self.frontend.hop_length


def _mn(name: str, width: float, emb: int, file: str, params: float, macs: float | None, mAP: float,
        sha256: str | None = None, family: str = "mn", **frontend) -> ModelSpec:
    return ModelSpec(name=name, family=family, width_mult=width, embedding_dim=emb, file_name=file,
                     url=EFFICIENTAT_RELEASE + file, sha256=sha256, frontend=MelSpec(**frontend),
                     params_millions=params, macs_billions=macs, mAP=mAP)


# The EfficientAT AudioSet release table (README of fschmid56/EfficientAT and its release files).
MODELS: dict[str, ModelSpec] = {s.name: s for s in (
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
    # dynamic MobileNets (params: README table; counted 1.961 / 10.548 / 39.966 M)
    _mn("dymn04_as", 0.4, 384, "dymn04_as.pt", 1.97, 0.12, 45.0, family="dymn"),
    _mn("dymn10_as", 1.0, 960, "dymn10_as.pt", 10.57, 0.58, 47.7, family="dymn"),
    _mn("dymn20_as", 2.0, 1920, "dymn20_as_mAP_493.pt", 40.02, 2.2, 49.1, family="dymn"),
)}

DEFAULT_MODEL = "mn10_as"  # the mission's default (960-d embeddings)
BUNDLED_MODEL = "mn04_as"  # shipped inside the package: works offline


def get_spec(name: str) -> ModelSpec:
    """The registry entry for `name`; an unknown name raises with the closest matches."""
    try:
        return MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(MODELS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} (`streamtag models` lists all {len(MODELS)})") from None


def list_models(pattern: str = "*") -> list[ModelSpec]:
    """Registry entries whose name matches a shell-style pattern, in release-table order."""
    return [s for s in MODELS.values() if fnmatch.fnmatch(s.name, pattern)]
