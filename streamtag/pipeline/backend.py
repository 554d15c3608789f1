"""What runs a network for the pipeline, declared once: the `Backend` protocol both runners implement (`Tagger`'s
`open_backend` picks one for a loaded model), the numpy outputs every one returns, and the batch-size rule."""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from ..models.interface import RunnableModel
from ..models.mel import FrameCache
from ..models.pending import PendingNetwork

if TYPE_CHECKING:
    import torch

AUDIO_PER_BATCH_S = {"cpu": 32.0, "cuda": 640.0}  # seconds of window audio per model call


def default_batch_size(device: "str | torch.device", window_s: float) -> int:
    """Windows per model call: enough audio to amortise the call, bounded for memory (`device` or its type)."""
    kind = device if isinstance(device, str) else device.type
    limit = 32 if kind == "cpu" else 256
    return int(min(limit, max(4, round(AUDIO_PER_BATCH_S.get(kind, 32.0) / window_s))))


class Inferred(NamedTuple):
    """Numpy outputs for a batch of windows: scores [B, C] | None, embeddings [B, D], frames [B, F, Df] | None."""

    scores: np.ndarray | None
    embeddings: np.ndarray
    frames: np.ndarray | None = None


class Backend(Protocol):
    """Runs a model's windows on a device: what `Stream` and `Tagger` call, whichever runner it is."""

    model: RunnableModel  # what the network is (rate, minimum input, scores, frames, frame times, spec)
    device: "str | torch.device"  # "cpu", or the torch device
    precision: str  # fp32 | fp16 | bf16
    runtime: str  # torch | openvino | onnxruntime
    frames: bool  # results carry frame embeddings
    pipelined: bool  # the stream runs the network in threads of its own, beside the next batch's front-end
    network_threads: int  # how many network calls may run at once

    def infer(self, windows: np.ndarray, lengths: np.ndarray | None = None) -> Inferred:
        """Outputs for stacked windows [B, N] (`lengths`: valid samples per row, for padding-aware networks)."""
        ...

    def prepare_span(self, span: np.ndarray, count: int, step: int, window: int,
                     lengths: np.ndarray | None = None, start: int | None = None,
                     cache: FrameCache | None = None) -> PendingNetwork:
        """The windows span[k*step : k*step + window], k < count, up to the network (the front-end run)."""
        ...

    def run_pending(self, pending: PendingNetwork) -> Inferred:
        """The network of a prepared batch, in any thread."""
        ...


__all__ = ["AUDIO_PER_BATCH_S", "Backend", "Inferred", "default_batch_size"]
