"""Runs a model on batches of windows on the chosen device and returns numpy scores and embeddings."""
from __future__ import annotations

import logging
import warnings
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..models.factory import ModelOutput, TaggingModel

log = logging.getLogger("streamtag")
AUDIO_PER_BATCH_S = {"cpu": 32.0, "cuda": 640.0}  # seconds of window audio per model call


def default_batch_size(device: torch.device, window_s: float) -> int:
    """Windows per model call: enough audio to amortise the call, bounded for memory."""
    limit = 32 if device.type == "cpu" else 256
    return int(min(limit, max(4, round(AUDIO_PER_BATCH_S.get(device.type, 32.0) / window_s))))
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; an unavailable or unknown device is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r} (use auto, cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available (use --device cpu or auto)")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r} (use auto, cpu or cuda)")
    return dev


def freeze_for_cpu(network: nn.Module, example: Tensor) -> nn.Module:
    """TorchScript-freeze a network for CPU inference (BN folded into convs, oneDNN kernels).

    Outputs match eager within float rounding (scores ~1e-6 on the goldens). Falls back to the
    eager module if tracing is not possible.
    """
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(network.eval(), example, check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    except Exception as e:  # an exotic module: stay eager, just slower
        log.warning("could not freeze the model for CPU (%s); running it eagerly", e)
        return network


class Inferred(NamedTuple):
    """Numpy outputs for a batch of windows: scores [B, 527] | None, embeddings [B, D], frames [B, F, Df] | None."""

    scores: np.ndarray | None
    embeddings: np.ndarray
    frames: np.ndarray | None = None


class ModelRunner:
    """Holds a model on a device and maps windows to `Inferred` numpy outputs.

    optimize: on CPU, freeze the network with TorchScript at the first batch; on CUDA, use
    channels-last memory. precision: "fp32" (default, exact), "fp16" (CUDA) or "bf16" autocast
    for the network; the front-end always runs in float32. frames: also return frame embeddings
    (models that have them).
    """

    def __init__(self, model: TaggingModel, device: str | torch.device = "auto", optimize: bool = True,
                 precision: str = "fp32", frames: bool = False) -> None:
        self.device = resolve_device(device)
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("precision fp16 needs a CUDA device; CPU runs fp32 or bf16")
        self.precision = precision
        self.model = model.to(self.device).eval()
        self.optimize = optimize
        self.frames = frames and model.has_frames
        self._network: nn.Module | None = None
        if self.device.type == "cuda" and optimize:
            self.model.to(memory_format=torch.channels_last)

    def _net(self, mel: Tensor) -> nn.Module:
        if self._network is None:
            if (self.optimize and self.device.type == "cpu" and self.precision == "fp32"
                    and getattr(self.model.network, "freezable", True)):
                self._network = freeze_for_cpu(self.model.network, mel)
            else:
                self._network = self.model.network
        return self._network

    def _to_device(self, x: np.ndarray) -> Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if self.device.type == "cuda":
            t = t.pin_memory().to(self.device, non_blocking=True)
        return t

    def infer(self, windows: np.ndarray, lengths: np.ndarray | None = None) -> Inferred:
        """Run stacked windows [B, N]; `lengths` (valid samples per row) lets models that mask padding do so."""
        with torch.inference_mode():
            x = self._to_device(windows)
            if self.model.frontend is None:  # a composite (ensemble) runs its members whole
                with self._autocast():
                    return self._to_numpy(self.model(x))
            return self._finish(self.model.frontend(x), lengths, x.shape[-1])

    def infer_span(self, span: np.ndarray, count: int, step: int, window: int,
                   lengths: np.ndarray | None = None) -> Inferred:
        """Run the windows span[k*step : k*step + window], k < count; they share STFT frames when possible."""
        frontend = self.model.frontend
        if (lengths is None and hasattr(frontend, "can_share_frames") and count > 1
                and frontend.can_share_frames(window, step)):
            with torch.inference_mode():
                return self._finish(frontend.windows(self._to_device(span), count, step, window))
        return self.infer(np.stack([span[k * step:k * step + window] for k in range(count)]), lengths)

    def _finish(self, features: Tensor, lengths: np.ndarray | None = None, n_samples: int | None = None) -> Inferred:
        net = self._net(features)
        if self.device.type == "cuda" and self.optimize and features.dim() == 4:
            features = features.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self._to_numpy(TaggingModel.run_network(
                net, features, None if lengths is None else torch.as_tensor(lengths, device=self.device), n_samples))

    def _autocast(self) -> torch.autocast:
        dtype = PRECISIONS[self.precision]
        return torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def _to_numpy(self, out: ModelOutput) -> Inferred:
        scores = None if out.logits is None else torch.sigmoid(out.logits.float()).cpu().numpy()
        frames = out.frames.float().cpu().numpy() if self.frames and out.frames is not None else None
        return Inferred(scores, out.embedding.float().cpu().numpy(), frames)
