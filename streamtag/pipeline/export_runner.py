"""What every runner returns (numpy outputs), the batch-size rule, and the runner of a cached OpenVINO export
(`models.exported.ExportedModel`) that tags on CPU without torch."""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..deps import cuda_may_be_present
from ..models.exported import ExportedModel
from ..models.mel import FrameCache
from ..models.pending import PendingNetwork

if TYPE_CHECKING:
    import torch

PRECISION_NAMES = ("fp32", "fp16", "bf16")
AUDIO_PER_BATCH_S = {"cpu": 32.0, "cuda": 640.0}  # seconds of window audio per model call


def default_batch_size(device: "str | torch.device", window_s: float) -> int:
    """Windows per model call: enough audio to amortise the call, bounded for memory (`device` or its type)."""
    kind = device if isinstance(device, str) else device.type
    limit = 32 if kind == "cpu" else 256
    return int(min(limit, max(4, round(AUDIO_PER_BATCH_S.get(kind, 32.0) / window_s))))


def known_cpu(device: "str | torch.device") -> bool:
    """Whether `device` means the CPU, told without importing torch ("auto" where no CUDA GPU can be present)."""
    name = device if isinstance(device, str) else device.type
    name = name.strip().lower()
    return name == "cpu" or (name == "auto" and not cuda_may_be_present())


class Inferred(NamedTuple):
    """Numpy outputs for a batch of windows: scores [B, C] | None, embeddings [B, D], frames [B, F, Df] | None."""

    scores: np.ndarray | None
    embeddings: np.ndarray
    frames: np.ndarray | None = None


class ExportRunner:
    """Runs an `ExportedModel` on the CPU in float32 (numpy front-end, OpenVINO network), as `ModelRunner` runs a
    torch model: windows -> `Inferred`."""

    device = "cpu"
    precision = "fp32"
    runtime = "openvino"
    frames = False
    pipelined = True  # a stream runs the network in threads of its own (one per OpenVINO stream), beside the front-end

    def __init__(self, model: ExportedModel) -> None:
        self.model = model
        self.network_threads = model.export.streams
        self._ready = model  # ready from the start (ModelRunner optimises at its first batch)

    def infer(self, windows: np.ndarray, lengths: np.ndarray | None = None) -> Inferred:
        """Run stacked windows [B, N] (MobileNets take no padding lengths: zeros are part of the window)."""
        return self.run_pending(PendingNetwork(self.model, np.ascontiguousarray(windows, dtype=np.float32)))

    def infer_span(self, span: np.ndarray, count: int, step: int, window: int,
                   lengths: np.ndarray | None = None, start: int | None = None,
                   cache: FrameCache | None = None) -> Inferred:
        """Run the windows span[k*step : k*step + window], k < count, sharing STFT frames where it can (with
        `start`, the span's position in its stream, also those of the stream's previous batch in `cache`)."""
        return self.run_pending(self.prepare_span(span, count, step, window, lengths, start, cache))

    def prepare_span(self, span: np.ndarray, count: int, step: int, window: int,
                     lengths: np.ndarray | None = None, start: int | None = None,
                     cache: FrameCache | None = None) -> PendingNetwork:
        """`infer_span` up to the network (the numpy front-end run); `run_pending` runs the export, in any thread."""
        return self.model.prepare_windows(np.ascontiguousarray(span, dtype=np.float32), count, step, window,
                                          start, cache)

    def run_pending(self, pending: PendingNetwork) -> Inferred:
        """The export on a prepared batch."""
        out = pending.run()
        return Inferred(out.scores, out.embeddings)
