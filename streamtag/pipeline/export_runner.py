"""The runner of a cached OpenVINO export (`models.exported.ExportedModel`): a `Backend` that tags on CPU without
torch."""
from __future__ import annotations

import numpy as np

from ..models.exported import ExportedModel
from ..models.mel import FrameCache
from ..models.pending import PendingNetwork
from .backend import Inferred

class ExportRunner:
    """A `Backend` for an `ExportedModel`: the CPU in float32 (numpy front-end, OpenVINO network), as `ModelRunner`
    runs a torch model: windows -> `Inferred`."""

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
