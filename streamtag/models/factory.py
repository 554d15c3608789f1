"""Builds a registered model: its front-end plus its network, with weights resolved and loaded."""
from __future__ import annotations

import importlib
import os
from typing import Callable, NamedTuple

import numpy as np
from torch import Tensor, nn

from . import dymn, mobilenet
from ..errors import ConfigError
from .frontends import EfficientATMel
from .registry import ModelSpec, get_spec
from .weights import ResolvedFile, load_into, read_checkpoint, resolve_weights, state_dict_of


def _efficientat_mel(spec: ModelSpec) -> EfficientATMel:
    f = spec.frontend
    return EfficientATMel(sample_rate=f.sample_rate, n_fft=f.n_fft, win_length=f.win_length,
                          hop_length=f.hop_length, n_mels=f.n_mels)


# A family's builder: (spec, loaded checkpoint or None for random weights, its path for messages)
# -> (front-end, network). A network maps front-end output (and optional valid lengths) to
# (logits [B, 527] in label-file order or None, embedding [B, D][, frame embeddings [B, F, Df]]),
# and, when it has frames, offers `frame_times(n_samples)`: each frame's start in seconds.
Builder = Callable[[ModelSpec, object, str], tuple[nn.Module, nn.Module]]


def _efficientat(architecture: Callable[[float, int], nn.Module]) -> Builder:
    def build(spec: ModelSpec, checkpoint: object, source: str) -> tuple[nn.Module, nn.Module]:
        network = architecture(spec.width_mult, spec.num_classes)
        if checkpoint is not None:
            load_into(network, state_dict_of(checkpoint, source), source, spec.name)
        return _efficientat_mel(spec), network
    return build


def _module(name: str) -> Builder:
    """The `build` function of family module `streamtag.models.<name>`, imported on first use."""
    def build(spec: ModelSpec, checkpoint: object, source: str) -> tuple[nn.Module, nn.Module]:
        return importlib.import_module(f"{__package__}.{name}").build(spec, checkpoint, source)
    return build


# family -> builder; one line per architecture module
FAMILIES: dict[str, Builder] = {
    "mn": _efficientat(mobilenet.MobileNetAT),
    "dymn": _efficientat(dymn.DyMN),
    "beats": _module("beats"),
    "ssast": _module("ssast"),
    "atstframe": _module("atstframe"),
    "eat": _module("eat"),
}


class ModelOutput(NamedTuple):
    """One model call: logits [B, 527] (None for embedding-only models), embeddings [B, D], frames [B, F, Df] | None."""

    logits: Tensor | None
    embedding: Tensor
    frames: Tensor | None = None


class TaggingModel(nn.Module):
    """A registered model with its front-end: waveforms [B, N] at its rate -> `ModelOutput`."""

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

    @property
    def has_scores(self) -> bool:
        """Whether this model as loaded gives scores: its network says so when the checkpoint decides
        (a released name may be given a file with or without a head), else its registry entry."""
        return bool(getattr(self.network, "has_scores", self.spec.has_scores))

    @property
    def has_frames(self) -> bool:
        return hasattr(self.network, "frame_times")

    def frame_times(self, n_samples: int) -> np.ndarray | None:
        """Start (s, from the window's first sample) of each frame embedding of an n_samples window."""
        return self.network.frame_times(n_samples) if self.has_frames else None

    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> ModelOutput:
        return self.run_network(self.network, self.frontend(wave), lengths, wave.shape[-1])

    @staticmethod
    def run_network(network: nn.Module, features: Tensor, lengths: Tensor | None = None,
                    n_samples: int | None = None) -> ModelOutput:
        """Call `network` (eager or frozen) on front-end output; valid `lengths` of n_samples windows go only to
        networks that mask padding (`uses_lengths`), the others read padded windows as they are."""
        if lengths is None or not getattr(network, "uses_lengths", False):
            return ModelOutput(*network(features))
        out = network(features, lengths, n_samples=n_samples)
        return ModelOutput(*out)


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
    resolved = checkpoint = None
    if pretrained or weights is not None:
        resolved = resolve_weights(spec, weights)
        checkpoint = read_checkpoint(resolved.path)
    frontend, network = FAMILIES[spec.family](spec, checkpoint, str(resolved.path) if resolved else spec.name)
    return TaggingModel(spec, frontend, network, resolved).eval()
