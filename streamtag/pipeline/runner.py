"""Runs a model on batches of windows on the chosen device and returns numpy scores and embeddings."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..models.mel import FrameCache
from ..models.model import ModelOutput, TaggingModel
from ..models.pending import PendingNetwork
from ..models.loader import PRECISION_NAMES, RunTarget
from ..models.runtimes import default_threads
from .backend import Inferred

PRECISIONS = dict(zip(PRECISION_NAMES, (None, torch.float16, torch.bfloat16)))


class ModelRunner:
    """A `Backend` for a torch model: holds it on the target's device and maps windows to `Inferred` numpy outputs.

    target.optimize: let the model optimise itself at the first batch (`TaggingModel.optimized_for`: on CPU an
    OpenVINO export or a TorchScript-frozen network, fp32 only; on CUDA channels-last memory).
    target.precision: "fp32" (default, exact), "fp16" (CUDA) or "bf16" autocast for the network; the
    front-end always runs in float32. target.frames: also return frame embeddings (models that have them).
    runtime: what runs the network, as `models.load` chose it ("torch", or "openvino"/"onnxruntime" on CPU in
    fp32 for exportable networks); it applies when optimising.
    """

    def __init__(self, model: TaggingModel, target: RunTarget = RunTarget(), runtime: str = "torch") -> None:
        self.device = target.torch_device()
        if target.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("precision fp16 needs a CUDA device; CPU runs fp32 or bf16")
        self.precision = target.precision
        self.runtime = runtime
        self.model = model.to(self.device).eval()
        self.optimize = target.optimize
        self.frames = target.frames and model.has_frames
        # a stream runs the network in threads of its own, beside the next batch's front-end (CPU): one per
        # OpenVINO stream (`CompiledExport`), else one; on CUDA both stay in the worker thread, as they always have
        self.pipelined = self.device.type == "cpu"
        self.network_threads = default_threads() if self.runtime == "openvino" else 1
        self._ready: TaggingModel | None = None  # the model optimised at the first batch

    def _to_device(self, x: np.ndarray) -> Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if self.device.type == "cuda":
            t = t.pin_memory().to(self.device, non_blocking=True)
        return t

    def _model_for(self, example: Tensor) -> TaggingModel:
        """The model to call: at the first batch, optimised for the device (CPU freezing only for exact fp32)."""
        if self._ready is None:
            wanted = self.optimize and (self.device.type == "cuda" or self.precision == "fp32")
            self._ready = self.model.optimized_for(example, self.runtime) if wanted else self.model
        return self._ready

    def infer(self, windows: np.ndarray, lengths: np.ndarray | None = None) -> Inferred:
        """Run stacked windows [B, N]; `lengths` (valid samples per row) lets models that mask padding do so."""
        return self.run_pending(self._prepare_stacked(windows, lengths))

    def infer_span(self, span: np.ndarray, count: int, step: int, window: int,
                   lengths: np.ndarray | None = None, start: int | None = None,
                   cache: FrameCache | None = None) -> Inferred:
        """Run the windows span[k*step : k*step + window], k < count; the model shares STFT frames where it can
        (with `start`, the span's position in its stream, also those of the stream's previous batch in `cache`)."""
        return self.run_pending(self.prepare_span(span, count, step, window, lengths, start, cache))

    def prepare_span(self, span: np.ndarray, count: int, step: int, window: int,
                     lengths: np.ndarray | None = None, start: int | None = None,
                     cache: FrameCache | None = None) -> PendingNetwork:
        """`infer_span` up to the network (the front-end run); `run_pending` runs the rest, in any thread."""
        if lengths is not None:
            return self._prepare_stacked(np.stack([span[k * step:k * step + window] for k in range(count)]), lengths)
        with torch.inference_mode():
            x = self._to_device(span)
            model = self._model_for(x[None, :window])
            with self._autocast():
                return model.prepare_windows(x, count, step, window, start, cache)

    def run_pending(self, pending: PendingNetwork) -> Inferred:
        """The network of a prepared batch, as numpy outputs."""
        with torch.inference_mode(), self._autocast():
            return self._to_numpy(pending.run())

    def _prepare_stacked(self, windows: np.ndarray, lengths: np.ndarray | None) -> PendingNetwork:
        """Stacked windows: the whole model pending (padding-aware networks take the lengths)."""
        with torch.inference_mode():
            x = self._to_device(windows)
            model = self._model_for(x[:1])
            return PendingNetwork(model, x, () if lengths is None else (torch.as_tensor(lengths),))

    def _autocast(self) -> torch.autocast:
        dtype = PRECISIONS[self.precision]
        return torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def _to_numpy(self, out: ModelOutput) -> Inferred:
        scores = None if out.logits is None else torch.sigmoid(out.logits.float()).cpu().numpy()
        frames = out.frames.float().cpu().numpy() if self.frames and out.frames is not None else None
        return Inferred(scores, out.embedding.float().cpu().numpy(), frames)


__all__ = ["ModelRunner", "PRECISIONS"]
