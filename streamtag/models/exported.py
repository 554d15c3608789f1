"""A registered model run by its cached OpenVINO export and its numpy front-end: tagging on CPU without torch.

`ExportedModel.from_cache` finds the export the torch path saved for (weights file, family config,
input shape) without building the network; on a miss it returns None and the caller builds the torch
model, which exports and saves it. Outputs equal the torch-front-end OpenVINO path within 1e-5.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .catalog import REGISTRY
from .interface import SpecFacts
from .mel import FrameCache
from .pending import PendingNetwork
from .spec import ModelSpec
from .runtimes import EXPORT_FILE, CompiledExport, export_folder, export_identity
from .weights import ResolvedFile, weights_sha256

log = logging.getLogger("streamtag")


class ExportedOutput(NamedTuple):
    """Numpy outputs of a batch: scores [B, C] (sigmoid), embeddings [B, D]."""

    scores: np.ndarray
    embeddings: np.ndarray


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function in float32 (exp overflows to inf for very negative logits: the score is then 0)."""
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x.astype(np.float32)))).astype(np.float32)


class ExportedModel(SpecFacts):
    """Numpy waveforms [B, N] at `sample_rate` -> scores and embeddings, through the front-end and the export for N
    (a `RunnableModel` that needs no torch)."""

    has_frames = False  # EfficientAT MobileNets give clip-level embeddings only
    exportable = True
    needs_torch: ClassVar[bool] = False
    runtime = "openvino"

    def __init__(self, spec: ModelSpec, weights: ResolvedFile, frontend, export: CompiledExport, window: int,
                 export_folder: Path) -> None:
        self.spec, self.weights, self.frontend, self.export, self.window = spec, weights, frontend, export, window
        self.export_folder = export_folder  # its cache entry

    @classmethod
    def from_cache(cls, spec: ModelSpec, weights: ResolvedFile, window: int,
                   threads: int | None = None) -> "ExportedModel | None":
        """The model for `window`-sample inputs from the export cache, or None when its family has no export or
        the entry is missing or unreadable (the torch path then builds, exports and saves it). `threads`: the
        network's (default: `runtimes.default_threads()`)."""
        if not REGISTRY.family(spec).exportable:
            return None
        frontend = spec.config.numpy_frontend()
        shape = (1, frontend.n_mels, frontend.frames(window))
        identity = export_identity(spec.family, spec.config, spec.num_classes, weights_sha256(spec, weights))
        folder = export_folder(identity, shape)
        if not (folder / EXPORT_FILE).is_file():
            return None
        try:
            export = CompiledExport.from_folder(folder, threads)
        except Exception as e:  # corrupt or truncated: the torch path rebuilds it
            log.debug("OpenVINO export %s unreadable (%s)", folder, e)
            return None
        return cls(spec, weights, frontend, export, window, folder)

    @property
    def has_scores(self) -> bool:
        return self.spec.has_scores

    def frame_times(self, n_samples: int) -> None:
        return None

    def __call__(self, windows: np.ndarray) -> ExportedOutput:
        """Outputs for waveforms [B, window]."""
        return self._network(self.frontend(windows))

    def forward_windows(self, span: np.ndarray, count: int, step: int, window: int, start: int | None = None,
                        cache: FrameCache | None = None) -> ExportedOutput:
        """Outputs for the windows span[k*step : k*step + window], k < count (sharing STFT frames where it can:
        with `start`, the span's position in its stream, also with the stream's previous batch in `cache`)."""
        return self.prepare_windows(span, count, step, window, start, cache).run()

    def prepare_windows(self, span: np.ndarray, count: int, step: int, window: int, start: int | None = None,
                        cache: FrameCache | None = None) -> PendingNetwork:
        """`forward_windows` up to the network: the front-end run, the export pending."""
        if self.frontend.can_share_frames(window, step):
            return PendingNetwork(self._network, self.frontend.windows(span, count, step, window, start, cache))
        return PendingNetwork(self._network, self.frontend(sliding_window_view(span, window)[::step][:count]))

    def _network(self, features: np.ndarray) -> ExportedOutput:
        logits, embeddings = self.export(features)
        return ExportedOutput(sigmoid(logits), embeddings.astype(np.float32, copy=False))
