"""Ensembles of registered models, as EfficientAT's `EnsemblerModel`: logits averaged, embeddings concatenated."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .mel import FrameCache
from .model import ModelOutput, TaggingModel
from .pending import PendingNetwork
from .spec import ModelSpec


@dataclass(frozen=True)
class EnsembleConfig:
    """The members of an ensemble, in order."""

    members: tuple[ModelSpec, ...]


def ensemble_spec(members: list[ModelSpec]) -> ModelSpec:
    """A spec for the ensemble: its name joins the members', its embedding is their concatenation."""
    rates = {m.sample_rate for m in members}
    if len(rates) != 1:
        raise ConfigError(f"ensemble members must share one input rate, got {sorted(rates)}")
    return ModelSpec(
        name=",".join(m.name for m in members), family="ensemble", config=EnsembleConfig(tuple(members)),
        file_name="", url="", sha256=None, license="; ".join(sorted({m.license for m in members})),
        sample_rate=members[0].sample_rate, embedding_dim=sum(m.embedding_dim for m in members),
        min_samples=max(m.min_samples for m in members),
        params_millions=sum(m.params_millions or 0 for m in members),
        trained_window_s=max((m.trained_window_s or 0 for m in members), default=0) or None)


class Ensemble(TaggingModel):
    """Runs every member on the same waveforms: (mean of member logits, concatenated embeddings).

    EfficientAT averages the logits (then the sigmoid gives the scores), which is what its
    published ensemble results use; streamtag does the same. Members must all give scores.
    """

    def __init__(self, members: list[TaggingModel]) -> None:
        super().__init__()
        if not all(m.has_scores for m in members):
            raise ConfigError("ensemble members must all give scores; "
                              + ", ".join(m.spec.name for m in members if not m.has_scores) + " give embeddings only")
        self.spec = ensemble_spec([m.spec for m in members])
        self.members = nn.ModuleList(members)
        self.weights = None

    @property
    def has_scores(self) -> bool:
        return True

    @property
    def has_frames(self) -> bool:
        return False

    def frame_times(self, n_samples: int) -> np.ndarray | None:
        return None

    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> ModelOutput:
        return self._combine([m(wave, lengths) for m in self.members])

    def prepare_windows(self, span: Tensor, count: int, step: int, window: int, start: int | None = None,
                        cache: FrameCache | None = None) -> PendingNetwork:
        return PendingNetwork(self._run_members, tuple(
            m.prepare_windows(span, count, step, window, start, None if cache is None else cache.member(i))
            for i, m in enumerate(self.members)))

    def _run_members(self, pending: tuple[PendingNetwork, ...]) -> ModelOutput:
        return self._combine([p.run() for p in pending])

    @property
    def exportable(self) -> bool:
        return all(m.exportable for m in self.members)

    def optimized_for(self, example: Tensor, runtime: str = "torch") -> "Ensemble":
        members = [m.optimized_for(example, runtime) for m in self.members]
        return self if all(a is b for a, b in zip(members, self.members)) else Ensemble(members).eval()

    @staticmethod
    def _combine(outputs: list[ModelOutput]) -> ModelOutput:
        logits = torch.stack([o.logits for o in outputs]).mean(dim=0)
        return ModelOutput(logits, torch.cat([o.embedding for o in outputs], dim=1))
