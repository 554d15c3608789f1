"""BEATs (microsoft/unilm `beats`): the `beats` family's registry entries, release settings and builder, without
torch; the network (and how it reads a checkpoint) is in `beats.network`, imported when one is built.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..family import Family, network_builder, network_names
from ..spec import ModelSpec

if TYPE_CHECKING:
    from ..frontends import KaldiFbank
    from .network import BeatsConfig


build = network_builder(__name__)  # network.build: (front-end, network) of a checkpoint, or random weights


__getattr__ = network_names(__name__)  # the network module's names, importing torch on first use


FBANK_MEAN, FBANK_STD = 15.41663, 6.55582  # `extract_features` defaults
FBANK_SCALE = 2 ** 15
FBANK_WINDOW, FBANK_HOP = 400, 160  # samples at 16 kHz (25 ms / 10 ms)


@dataclass(frozen=True)
class BeatsRelease:
    """A BEATs registry entry's settings: fine-tuned or not, and the fbank front-end (`BEATs.preprocess`)."""

    finetuned: bool
    n_mels: int = 128
    sample_rate: int = 16000

    def architecture(self) -> "BeatsConfig":
        """The released architecture (for random weights; a checkpoint brings its own `cfg`)."""
        import dataclasses
        from .network import RELEASED_ARCHITECTURE
        return dataclasses.replace(RELEASED_ARCHITECTURE, finetuned_model=self.finetuned)

    def frontend(self) -> "KaldiFbank":
        """x 2**15, povey-window Kaldi fbank, no mean removal, (x - 15.41663) / (2 * 6.55582)."""
        from ..frontends import KaldiFbank
        return KaldiFbank(sample_rate=self.sample_rate, n_mels=self.n_mels, window_type="povey", scale=FBANK_SCALE,
                          remove_wave_mean=False, htk_compat=False, mean=FBANK_MEAN, std=FBANK_STD)


BEATS_BASE = "https://valle.blob.core.windows.net/share/BEATs/"
BEATS_QUERY = ("?sv=2021-10-04&st=2024-04-04T07%3A15%3A11Z&se=2034-04-05T07%3A15%3A00Z&sr=c&sp=rl"
               "&sig=xH3MbkMqHPLBI5gN%2Frt9H4J8Ai%2BtUnkduo7KGpkLbdA%3D")


def _beats(name: str, file: str, classes: int, mAP: float | None = None) -> ModelSpec:
    # 16 fbank frames (+ the 25 ms frame) per time patch; frames are 160 ms patches
    return ModelSpec(name=name, family="beats", config=BeatsRelease(finetuned=classes > 0), file_name=file,
                     url=BEATS_BASE + file + BEATS_QUERY, sha256=None, license="MIT (microsoft/unilm BEATs)",
                     sample_rate=16000, embedding_dim=768, min_samples=FBANK_WINDOW + 15 * FBANK_HOP,
                     num_classes=classes, params_millions=90.72 if classes else 90.31, mAP=mAP, frame_dim=768,
                     frame_hop_s=0.16, trained_window_s=10.0)


FAMILY = Family("beats", build, (
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
))
