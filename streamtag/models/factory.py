"""Builds a registered model: its front-end plus its network, with weights resolved and loaded."""
from __future__ import annotations

import os
from typing import Callable

from torch import Tensor, nn

from . import dymn, mobilenet
from ..errors import ConfigError
from .frontends import EfficientATMel
from .registry import ModelSpec, get_spec
from .weights import ResolvedFile, load_checkpoint, load_into, resolve_weights


def _efficientat_mel(spec: ModelSpec) -> EfficientATMel:
    f = spec.frontend
    return EfficientATMel(sample_rate=f.sample_rate, n_fft=f.n_fft, win_length=f.win_length,
                          hop_length=f.hop_length, n_mels=f.n_mels)


# family -> builder returning (front-end, network); one line per architecture module
FAMILIES: dict[str, Callable[[ModelSpec], tuple[nn.Module, nn.Module]]] = {
    "mn": lambda spec: (_efficientat_mel(spec), mobilenet.MobileNetAT(spec.width_mult, spec.num_classes)),
    "dymn": lambda spec: (_efficientat_mel(spec), dymn.DyMN(spec.width_mult, spec.num_classes)),
}


class TaggingModel(nn.Module):
    """A registered model with its front-end: waveforms [B, N] at its rate -> (logits [B, 527], embedding [B, D])."""

    def __init__(self, spec: ModelSpec, frontend: nn.Module, network: nn.Module,
                 weights: ResolvedFile | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.frontend = frontend
        self.network = network
        self.weights = weights  # where the loaded weights came from (None: random init)

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    def forward(self, wave: Tensor) -> tuple[Tensor, Tensor]:
        return self.network(self.frontend(wave))


def create_model(name: str, weights: str | os.PathLike | None = None, pretrained: bool = True) -> TaggingModel:
    """Build model `name` in eval mode; weights from `weights`, else cache/bundled/download.

    `pretrained=False` skips loading and leaves the architecture's random initialisation.
    A comma-separated name ("dymn20_as,mn40_as_ext,mn40_as") builds an ensemble; its
    `weights`, if given, is a comma-separated list of files in the same order.
    """
    if "," in name:
        from .ensemble import Ensemble
        names = [n.strip() for n in name.split(",")]
        files = [w.strip() or None for w in str(weights).split(",")] if weights is not None else [None] * len(names)
        if len(files) != len(names):
            raise ConfigError(f"{len(names)} ensemble members but {len(files)} weights files")
        return Ensemble([create_model(n, w, pretrained) for n, w in zip(names, files)]).eval()
    spec = get_spec(name)
    frontend, network = FAMILIES[spec.family](spec)
    resolved = None
    if pretrained or weights is not None:
        resolved = resolve_weights(spec, weights)
        state = load_checkpoint(resolved.path)
        load_into(network, state, str(resolved.path), spec.name)
    return TaggingModel(spec, frontend, network, resolved).eval()
