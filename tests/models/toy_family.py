"""A complete model family in one module, as a new family is added to streamtag (used by test_contract.py).

A "loudness" network: per 10 ms frame the log energy of the waveform; embedding = (mean, max) of
it; two classes ("quiet", "loud") by a fixed threshold on the mean; one frame per 10 ms.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from streamtag.models.frontends import Frontend, frame_count
from streamtag.models.model import Network
from streamtag.models.family import Family
from streamtag.models.spec import ModelSpec


@dataclass(frozen=True)
class LoudnessConfig:
    """Front-end and architecture of the toy family."""

    sample_rate: int = 16000
    hop_length: int = 160
    threshold_db: float = -30.0


class FrameEnergy(Frontend):
    """[B, N] -> log energy per hop [B, T] (T = frames wholly inside)."""

    def __init__(self, sample_rate: int, hop_length: int) -> None:
        super().__init__()
        self.sample_rate, self.hop_length = sample_rate, hop_length

    def frames(self, n_samples: int) -> int:
        return frame_count(n_samples, self.hop_length, self.hop_length)

    def forward(self, wave: Tensor) -> Tensor:
        frames = wave.unfold(-1, self.hop_length, self.hop_length)
        return 10 * torch.log10(frames.pow(2).mean(-1) + 1e-10)


class Loudness(Network):
    """Log energies [B, T] -> (logits [B, 2], embedding (mean, max) [B, 2], frames [B, T, 1])."""

    freezable = True
    has_frames = True

    def __init__(self, threshold_db: float) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.tensor(threshold_db))

    def forward(self, db: Tensor):
        embedding = torch.stack([db.mean(-1), db.amax(-1)], dim=-1)
        loud = embedding[:, 0] - self.threshold
        return torch.stack([-loud, loud], dim=-1), embedding, db.unsqueeze(-1)

    def frame_starts(self, n_rows: int) -> np.ndarray:
        return np.arange(n_rows)


def build(spec: ModelSpec, checkpoint: object | None, source: str, labels):
    config: LoudnessConfig = spec.config
    return FrameEnergy(config.sample_rate, config.hop_length), Loudness(config.threshold_db)


FAMILY = Family("loudness", build, (
    ModelSpec(name="loudness_toy", family="loudness", config=LoudnessConfig(), file_name="", url="", sha256=None,
              license="public domain", sample_rate=16000, embedding_dim=2, min_samples=160, num_classes=2,
              frame_dim=1, frame_hop_s=0.01),
))
