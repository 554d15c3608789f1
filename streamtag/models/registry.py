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
    family: str  # selects the architecture module (factory.FAMILIES): "mn", "dymn", "beats", ...
    width_mult: float
    embedding_dim: int  # of the released model (a checkpoint's own config may differ)
    file_name: str
    url: str
    sha256: str | None
    frontend: MelSpec = field(default_factory=MelSpec)
    params_millions: float | None = None
    macs_billions: float | None = None
    mAP: float | None = None
    license: str = EFFICIENTAT_LICENSE
    num_classes: int = 527  # 0: an embedding-only (self-supervised) release, results carry scores=None
    input_rate: int | None = None  # model input rate when it is not the EfficientAT front-end's
    min_input: int | None = None  # shortest window in samples, when not one STFT hop
    frame_dim: int | None = None  # size of the frame-level embeddings (None: the model has none)
    frame_hop_s: float | None = None  # time between frame embeddings
    trained_window_s: float | None = None  # input length the model was trained on (warn far below)
    page: str | None = None  # where a person downloads the file, when `url` is not a direct download
    arch: dict = field(default_factory=dict, compare=False, hash=False)  # release architecture settings

    @property
    def sample_rate(self) -> int:
        return self.input_rate or self.frontend.sample_rate

    @property
    def min_samples(self) -> int:
        """Shortest window or hop accepted: one STFT hop, or the family's minimum input."""
        return self.min_input or self.frontend.hop_length

    @property
    def has_scores(self) -> bool:
        return self.num_classes > 0


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

BEATS_BASE = "https://valle.blob.core.windows.net/share/BEATs/"
BEATS_QUERY = ("?sv=2021-10-04&st=2024-04-04T07%3A15%3A11Z&se=2034-04-05T07%3A15%3A00Z&sr=c&sp=rl"
               "&sig=xH3MbkMqHPLBI5gN%2Frt9H4J8Ai%2BtUnkduo7KGpkLbdA%3D")
SSAST_LICENSE = "BSD-3-Clause (YuanGongND/ssast, (c) 2021 Yuan Gong)"


def _transformer(name: str, family: str, dim: int, file: str, url: str, *, classes: int = 527,
                 params: float | None = None, mAP: float | None = None, license: str, min_input: int,
                 frame_dim: int | None = None, frame_hop_s: float | None = None, page: str | None = None,
                 **arch) -> ModelSpec:
    return ModelSpec(name=name, family=family, width_mult=0.0, embedding_dim=dim, file_name=file, url=url,
                     sha256=None, frontend=MelSpec(sample_rate=16000, n_fft=arch.pop("n_fft", 512),
                                                   win_length=arch.pop("win_length", 400), hop_length=160,
                                                   n_mels=arch.pop("n_mels", 128)),
                     params_millions=params, mAP=mAP, license=license, num_classes=classes, input_rate=16000,
                     min_input=min_input, frame_dim=frame_dim or dim, frame_hop_s=frame_hop_s,
                     trained_window_s=10.0, page=page, arch=arch)


def _beats(name: str, file: str, classes: int, mAP: float | None = None) -> ModelSpec:
    # 16 fbank frames (+ the 25 ms frame) per time patch; frames are 160 ms patches
    return _transformer(name, "beats", 768, file, BEATS_BASE + file + BEATS_QUERY, classes=classes,
                        params=90.72 if classes else 90.31,
                        mAP=mAP, license="MIT (microsoft/unilm BEATs)", min_input=400 + 15 * 160,
                        frame_hop_s=0.16)


def _ssast(name: str, file: str, url: str, size: str, frame: bool) -> ModelSpec:
    dim, params = {"tiny": (192, 5.49), "small": (384, 21.59), "base": (768, 85.65)}[size]
    return _transformer(name, "ssast", dim, file, url, classes=0, params=params, license=SSAST_LICENSE,
                        min_input=400 + (1 if frame else 15) * 160, frame_hop_s=0.01 if frame else 0.1,
                        size=size, patch="frame" if frame else "patch")


def _drive(file_id: str) -> tuple[str, str]:
    """(direct-download URL, page) of a Google Drive file; Drive needs a person for large files."""
    return (f"https://drive.google.com/uc?export=download&id={file_id}",
            f"https://drive.google.com/file/d/{file_id}/view")


def _atst(name: str, dim: int, file_id: str, params: float) -> ModelSpec:
    url, page = _drive(file_id)
    return _transformer(name, "atstframe", 12 * dim, name + ".ckpt", url, classes=0, params=params,
                        license="CC BY 4.0 (Audio-WestlakeU/audiossl)", min_input=4 * 160,
                        frame_dim=12 * dim, frame_hop_s=0.04, page=page, n_mels=64, n_fft=1024, win_length=1024)


def _eat(name: str, dim: int, file_id: str, classes: int, params: float | None, mAP: float | None = None) -> ModelSpec:
    url, page = _drive(file_id)
    return _transformer(name, "eat", dim, name + ".pt", url, classes=classes, params=params, mAP=mAP,
                        license="MIT (cwx-worst-one/EAT)", min_input=400 + 15 * 160, frame_hop_s=0.16,
                        page=page)


_SSAST_DROPBOX = "https://www.dropbox.com/s/{}/{}?dl=1"

# Audio transformers (16 kHz). Pre-trained (self-supervised) releases give embeddings only.
# Parameters are counted from the architecture built here (None: not counted).
MODELS.update({s.name: s for s in (
    _beats("beats_iter1", "BEATs_iter1.pt", 0),
    _beats("beats_iter2", "BEATs_iter2.pt", 0),
    _beats("beats_iter3", "BEATs_iter3.pt", 0),
    _beats("beats_iter3plus_as20k", "BEATs_iter3_plus_AS20K.pt", 0),
    _beats("beats_iter3plus_as2m", "BEATs_iter3_plus_AS2M.pt", 0),
    _beats("beats_iter1_as2m", "BEATs_iter1_finetuned_on_AS2M_cpt2.pt", 527, 47.9),
    _beats("beats_iter2_as2m", "BEATs_iter2_finetuned_on_AS2M_cpt2.pt", 527, 48.1),
    _beats("beats_iter3_as2m", "BEATs_iter3_finetuned_on_AS2M_cpt2.pt", 527, 48.0),
    _beats("beats_iter3plus_as20k_as2m", "BEATs_iter3_plus_AS20K_finetuned_on_AS2M_cpt2.pt", 527),
    _beats("beats_iter3plus_as2m_as2m", "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt", 527, 48.6),
    _ssast("ssast_base_patch_400", "SSAST-Base-Patch-400.pth",
           _SSAST_DROPBOX.format("ewrzpco95n9jdz6", "SSAST-Base-Patch-400.pth"), "base", False),
    _ssast("ssast_base_patch_250", "SSAST-Base-Patch-250.pth",
           _SSAST_DROPBOX.format("mxrm9qog6aj8hif", "SSAST-Base-Patch-250.pth"), "base", False),
    _ssast("ssast_base_frame_400", "SSAST-Base-Frame-400.pth",
           _SSAST_DROPBOX.format("nx6nl4d4bl71sm8", "SSAST-Base-Frame-400.pth"), "base", True),
    _ssast("ssast_base_frame_250", "SSAST-Base-Frame-250.pth",
           _SSAST_DROPBOX.format("4e6l7ulhwrfoana", "SSAST-Base-Frame-250.pth"), "base", True),
    _ssast("ssast_small_patch_400", "SSAST-Small-Patch-400.pth",
           _SSAST_DROPBOX.format("i24w446rl9pkf05", "SSAST-Small-Patch-400.pth"), "small", False),
    _ssast("ssast_tiny_patch_400", "SSAST-Tiny-Patch-400.pth",
           _SSAST_DROPBOX.format("fkbtf78y94113wz", "SSAST-Tiny-Patch-400.pth"), "tiny", False),
    _ssast("ssast_tiny_frame_400", "SSAST-Tiny-Frame-400.pth",
           _SSAST_DROPBOX.format("rx7g60ruzawffzv", "SSAST-Tiny-Frame-400.pth"), "tiny", True),
    _atst("atstframe_small", 384, "1xZoOTuxV415icYONYbeFQzgrmJQf4a4B", 21.48),
    _atst("atstframe_base", 768, "1bGJSZWlAIIJ6GL5Id5dW0PTB72DL-QDQ", 85.42),
    _eat("eat_base_epoch10", 768, "10pklbY_fKraQUIBizSg1kv4lJXNWxpxl", 0, 89.97),
    _eat("eat_base_epoch10_as2m", 768, "1F07zN8N54rXU-szvKUlYaCFMCepc4wHR", 527, 90.38, 48.6),
    _eat("eat_base_epoch10_as20k", 768, "1fRX_Mgj4sHxV2F6AVfoqXObfgzFMnHRA", 527, 90.38, 40.2),
    _eat("eat_base_epoch30", 768, "19hfzLgHCkyqTOYmHt8dqVa9nm-weBq4f", 0, 89.97),
    _eat("eat_base_epoch30_as2m", 768, "1aCYiQmoZv_Gh1FxnR-CCWpNAp6DIJzn6", 527, 90.38),
    _eat("eat_large_epoch20", 1024, "1PEgriRvHsqrtLzlA478VemX7Q0ZGl889", 0, None),
    _eat("eat_large_epoch20_as2m", 1024, "1b_f_nQAdjM1B6u72OFUtFiUu-4yM2shd", 527, None),
)})


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
