"""SSAST (YuanGongND/ssast): the `ssast` family's registry entries, release settings and builder, without torch;
the network (and how it reads a checkpoint) is in `ssast.network`, imported when one is built.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..family import Family, network_builder, network_names
from ..spec import ModelSpec

if TYPE_CHECKING:
    from ..frontends import KaldiFbank
    from .network import SSASTConfig


build = network_builder(__name__)  # network.build: (front-end, network) of a checkpoint, or random weights


__getattr__ = network_names(__name__)  # the network module's names, importing torch on first use


AUDIOSET_MEAN, AUDIOSET_STD = -4.2677393, 4.5689974
SIZES = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}  # released width, heads (head dim 64)
PATCH_SHAPES = {"patch": (16, 16), "frame": (128, 2)}
RECIPE_STRIDES = {"patch": (10, 10), "frame": (128, 1)}  # fine-tuning (fstride, tstride)
RELEASE_DEPTH, RELEASE_MLP_RATIO, PRETRAIN_TDIM = 12, 4, 1024


@dataclass(frozen=True)
class SSASTRelease:
    """An SSAST registry entry's settings: size, patch kind, pooling, fine-tuning strides, and its front-end."""

    size: str  # tiny | small | base
    patch: str  # patch | frame
    pooling: str = "avgtok"  # avgtok (ft_avgtok) | cls (ft_cls)
    strides: tuple[int, int] | None = None  # (fstride, tstride); None: the recipe's for the patch kind
    n_mels: int = 128
    sample_rate: int = 16000

    def architecture(self) -> "SSASTConfig":
        """The released self-supervised architecture (for random weights)."""
        from .network import SSASTConfig
        dim, heads = SIZES[self.size]
        patch_shape = PATCH_SHAPES[self.patch]
        grid = (self.n_mels // patch_shape[0], PRETRAIN_TDIM // patch_shape[1])
        return SSASTConfig(dim=dim, depth=RELEASE_DEPTH, heads=heads, mlp_hidden=RELEASE_MLP_RATIO * dim,
                           patch_shape=patch_shape, strides=self.strides or RECIPE_STRIDES[self.patch], pos_grid=grid,
                           n_mels=self.n_mels)

    def frontend(self) -> "KaldiFbank":
        """The recipe's evaluation front-end: mean-removed waveform -> AudioSet-normalised 128-bin fbank."""
        from ..frontends import KaldiFbank
        return KaldiFbank(sample_rate=self.sample_rate, n_mels=self.n_mels, window_type="hanning", scale=1.0,
                          remove_wave_mean=True, htk_compat=True, mean=AUDIOSET_MEAN, std=AUDIOSET_STD)


SSAST_LICENSE = "BSD-3-Clause (YuanGongND/ssast, (c) 2021 Yuan Gong)"
_SSAST_DROPBOX = "https://www.dropbox.com/s/{}/{}?dl=1"


def _ssast(name: str, file: str, dropbox_id: str, size: str, frame: bool) -> ModelSpec:
    dim, params = {"tiny": (192, 5.49), "small": (384, 21.59), "base": (768, 85.65)}[size]
    return ModelSpec(name=name, family="ssast", config=SSASTRelease(size=size, patch="frame" if frame else "patch"),
                     file_name=file, url=_SSAST_DROPBOX.format(dropbox_id, file), sha256=None, license=SSAST_LICENSE,
                     sample_rate=16000, embedding_dim=dim, min_samples=400 + (1 if frame else 15) * 160, num_classes=0,
                     params_millions=params, frame_dim=dim, frame_hop_s=0.01 if frame else 0.1, trained_window_s=10.0)


# Self-supervised releases (embeddings only; a fine-tuned 527-class state gives scores).
FAMILY = Family("ssast", build, (
    _ssast("ssast_base_patch_400", "SSAST-Base-Patch-400.pth", "ewrzpco95n9jdz6", "base", False),
    _ssast("ssast_base_patch_250", "SSAST-Base-Patch-250.pth", "mxrm9qog6aj8hif", "base", False),
    _ssast("ssast_base_frame_400", "SSAST-Base-Frame-400.pth", "nx6nl4d4bl71sm8", "base", True),
    _ssast("ssast_base_frame_250", "SSAST-Base-Frame-250.pth", "4e6l7ulhwrfoana", "base", True),
    _ssast("ssast_small_patch_400", "SSAST-Small-Patch-400.pth", "i24w446rl9pkf05", "small", False),
    _ssast("ssast_tiny_patch_400", "SSAST-Tiny-Patch-400.pth", "fkbtf78y94113wz", "tiny", False),
    _ssast("ssast_tiny_frame_400", "SSAST-Tiny-Frame-400.pth", "rx7g60ruzawffzv", "tiny", True),
))
