"""ATST-Frame (Audio-WestlakeU/audiossl): the `atstframe` family's registry entries, release settings and builder,
without torch; the network (and how it reads a checkpoint) is in `atstframe.network`, imported when one is built.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..family import Family, network_builder, network_names
from ..spec import ModelSpec

if TYPE_CHECKING:
    from ..frontends import ATSTMel
    from .network import FrameASTConfig


build = network_builder(__name__)  # network.build: (front-end, network) of a checkpoint, or random weights


__getattr__ = network_names(__name__)  # the network module's names, importing torch on first use


DEFAULT_N_BLOCKS = 12  # the reference's embedding.N_BLOCKS (timestamp embeddings)


@dataclass(frozen=True)
class ATSTRelease:
    """An ATST-Frame registry entry's settings: the released encoder, `n_blocks` for the frames, the mel front-end."""

    embed_dim: int
    num_heads: int
    depth: int = 12
    n_blocks: int = DEFAULT_N_BLOCKS  # blocks concatenated per timestamp frame
    n_mels: int = 64
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160
    sample_rate: int = 16000

    def architecture(self) -> "FrameASTConfig":
        """The released encoder (for random weights; a checkpoint brings its own shapes)."""
        from .network import FrameASTConfig
        return FrameASTConfig(embed_dim=self.embed_dim, depth=self.depth, num_heads=self.num_heads,
                              mlp_dim=4 * self.embed_dim, n_mels=self.n_mels)

    def frontend(self, n_mels: int | None = None) -> "ATSTMel":
        from ..frontends import ATSTMel
        return ATSTMel(sample_rate=self.sample_rate, n_fft=self.n_fft, win_length=self.win_length,
                       hop_length=self.hop_length, n_mels=n_mels or self.n_mels)


def _drive(file_id: str) -> tuple[str, str]:
    """(direct-download URL, page) of a Google Drive file; Drive needs a person for large files."""
    return (f"https://drive.google.com/uc?export=download&id={file_id}",
            f"https://drive.google.com/file/d/{file_id}/view")


def _atst(name: str, dim: int, heads: int, file_id: str, params: float) -> ModelSpec:
    url, page = _drive(file_id)
    return ModelSpec(name=name, family="atstframe", config=ATSTRelease(embed_dim=dim, num_heads=heads),
                     file_name=name + ".ckpt", url=url, sha256=None, license="CC BY 4.0 (Audio-WestlakeU/audiossl)",
                     sample_rate=16000, embedding_dim=12 * dim, min_samples=4 * 160, num_classes=0,
                     params_millions=params, frame_dim=12 * dim, frame_hop_s=0.04, trained_window_s=10.0, page=page)


FAMILY = Family("atstframe", build, (
    _atst("atstframe_small", 384, 6, "1xZoOTuxV415icYONYbeFQzgrmJQf4a4B", 21.48),
    _atst("atstframe_base", 768, 12, "1bGJSZWlAIIJ6GL5Id5dW0PTB72DL-QDQ", 85.42),
))
