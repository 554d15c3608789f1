"""Ensembles of registered models, as EfficientAT's `EnsemblerModel`: logits averaged, embeddings concatenated."""
from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .factory import ModelOutput, TaggingModel
from .registry import ModelSpec


def ensemble_spec(members: list[ModelSpec]) -> ModelSpec:
    """A spec for the ensemble: its name joins the members', its embedding is their concatenation."""
    rates = {m.sample_rate for m in members}
    if len(rates) != 1:
        raise ConfigError(f"ensemble members must share one input rate, got {sorted(rates)}")
    if not all(m.has_scores for m in members):
        raise ConfigError("ensemble members must all give scores; "
                          + ", ".join(m.name for m in members if not m.has_scores) + " give embeddings only")
    widest_hop = max(members, key=lambda m: m.frontend.hop_length)
    return dataclasses.replace(
        members[0], name=",".join(m.name for m in members), family="ensemble", width_mult=0.0,
        embedding_dim=sum(m.embedding_dim for m in members), file_name="", url="", sha256=None,
        frontend=widest_hop.frontend, params_millions=sum(m.params_millions or 0 for m in members),
        macs_billions=None, mAP=None, min_input=max(m.min_samples for m in members), license="; ".join(sorted({m.license for m in members})))


class Ensemble(TaggingModel):
    """Runs every member on the same waveforms: (mean of member logits, concatenated embeddings).

    EfficientAT averages the logits (then the sigmoid gives the scores), which is what its
    published ensemble results use; streamtag does the same.
    """

    def __init__(self, members: list[TaggingModel]) -> None:
        super().__init__(ensemble_spec([m.spec for m in members]), None, None)
        self.members = nn.ModuleList(members)

    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> ModelOutput:
        outputs = [m(wave, lengths) for m in self.members]
        logits = torch.stack([o.logits for o in outputs]).mean(dim=0)
        return ModelOutput(logits, torch.cat([o.embedding for o in outputs], dim=1))
