"""EAT (cwx-worst-one/EAT): the `eat` family's registry entries, release settings and builder, without torch; the
network (and how it reads a fairseq checkpoint) is in `eat.network`, imported when one is built.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import ConfigError
from ..family import Family, network_builder, network_names
from ..spec import ModelSpec

if TYPE_CHECKING:
    from ..frontends import KaldiFbank
    from .network import EATEncoderConfig


build = network_builder(__name__)  # network.build: (front-end, network) of a checkpoint, or random weights


__getattr__ = network_names(__name__)  # the network module's names, importing torch on first use


AUDIOSET_MEAN, AUDIOSET_STD = -4.268, 4.569
SCRIPT_TARGET_LENGTH = 1024  # fbank frames the official scripts pad or cut every clip to (10.24 s)
PATCH = 16


@dataclass(frozen=True)
class EATRelease:
    """An EAT registry entry's settings: the released encoder width and the fbank front-end.

    `target_length` None (the default for streaming windows) rounds each window's fbank frames up to
    a multiple of 16; 1024 reproduces the official scripts' fixed 10.24 s
    (`create_model(get_spec(name).with_config(target_length=1024))`).
    """

    embed_dim: int
    target_length: int | None = None
    n_mels: int = 128
    sample_rate: int = 16000

    def architecture(self) -> "EATEncoderConfig":
        """The released architecture of this width (config/pretraining_AS2M*.yaml, max_length 768)."""
        from .network import EATEncoderConfig
        depth, heads = {768: (12, 12), 1024: (24, 16)}.get(self.embed_dim, (0, 0))
        if not depth:
            raise ConfigError(f"no released EAT architecture of width {self.embed_dim}")
        return EATEncoderConfig(embed_dim=self.embed_dim, depth=depth, num_heads=heads)

    def frontend(self, patch: int = PATCH) -> "KaldiFbank":
        """Mean removal, Kaldi fbank (hanning, htk_compat), rows padded to T, (x + 4.268) / (2 * 4.569)."""
        from ..frontends import KaldiFbank
        return KaldiFbank(sample_rate=self.sample_rate, n_mels=self.n_mels, window_type="hanning",
                          remove_wave_mean=True, htk_compat=True, mean=AUDIOSET_MEAN, std=AUDIOSET_STD,
                          target_length=self.target_length, frames_multiple=patch)


def _eat(name: str, dim: int, file_id: str, classes: int, params: float | None, mAP: float | None = None) -> ModelSpec:
    url = f"https://drive.google.com/uc?export=download&id={file_id}"
    return ModelSpec(name=name, family="eat", config=EATRelease(embed_dim=dim), file_name=name + ".pt", url=url,
                     sha256=None, license="MIT (cwx-worst-one/EAT)", sample_rate=16000, embedding_dim=dim,
                     min_samples=400 + 15 * 160, num_classes=classes, params_millions=params, mAP=mAP, frame_dim=dim,
                     frame_hop_s=0.16, trained_window_s=10.0, page=f"https://drive.google.com/file/d/{file_id}/view")


FAMILY = Family("eat", build, (
    _eat("eat_base_epoch10", 768, "10pklbY_fKraQUIBizSg1kv4lJXNWxpxl", 0, 89.97),
    _eat("eat_base_epoch10_as2m", 768, "1F07zN8N54rXU-szvKUlYaCFMCepc4wHR", 527, 90.38, 48.6),
    _eat("eat_base_epoch10_as20k", 768, "1fRX_Mgj4sHxV2F6AVfoqXObfgzFMnHRA", 527, 90.38, 40.2),
    _eat("eat_base_epoch30", 768, "19hfzLgHCkyqTOYmHt8dqVa9nm-weBq4f", 0, 89.97),
    _eat("eat_base_epoch30_as2m", 768, "1aCYiQmoZv_Gh1FxnR-CCWpNAp6DIJzn6", 527, 90.38),
    _eat("eat_large_epoch20", 1024, "1PEgriRvHsqrtLzlA478VemX7Q0ZGl889", 0, 308.87),
    _eat("eat_large_epoch20_as2m", 1024, "1b_f_nQAdjM1B6u72OFUtFiUu-4yM2shd", 527, 309.41),
))
