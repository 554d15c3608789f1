"""The model contract: a `Network` declares what it offers, a `TaggingModel` maps waveforms to `ModelOutput`.

Everything the pipeline needs from a model is declared here (scores or not, frame embeddings and
their times, padding masks, freezing, shared STFT frames); nothing is found by probing attributes.
"""
from __future__ import annotations

import logging
import warnings
from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .frontends import Frontend
from .interface import SpecFacts
from .mel import FrameCache
from .pending import PendingNetwork
from .spec import ModelSpec
from .runtimes import EXPORT_RUNTIMES, OnnxRuntimeNetwork, OpenVINONetwork, export_identity
from .weights import ResolvedFile, weights_sha256

log = logging.getLogger("streamtag")



def check_waveforms(wave: object, dims: int, layout: str) -> None:
    """ConfigError unless `wave` is a floating-point tensor of `dims` dimensions (`layout`, in [-1, 1))."""
    if not isinstance(wave, Tensor):
        raise ConfigError(f"a model takes a torch.Tensor {layout}, got {type(wave).__name__} "
                          "(torch.from_numpy(x) for a NumPy array)")
    if not wave.is_floating_point():
        raise ConfigError(f"a model takes float waveforms in [-1, 1), got {wave.dtype} (scale integer PCM first: "
                          "int16 / 32768)")
    if wave.dim() != dims:
        raise ConfigError(f"a model takes waveforms {layout}, got shape {tuple(wave.shape)}")

def stacked_windows(span: Tensor, count: int, step: int, window: int) -> Tensor:
    """The windows span[k*step : k*step + window], k < count, as one contiguous [count, window] tensor."""
    return span.unfold(0, window, step)[:count].contiguous()


class ModelOutput(NamedTuple):
    """One model call: logits [B, C] (None for embedding-only models), embeddings [B, D], frames [B, F, Df] | None."""

    logits: Tensor | None
    embedding: Tensor
    frames: Tensor | None = None


class Network(nn.Module):
    """A family's network: front-end output [B, ...] -> (logits | None, embedding[, frames]) as a plain tuple.

    Subclasses declare what they offer with the class attributes below (and `has_scores` per instance
    where the checkpoint decides). `forward(features)` is the call; networks that mask padding
    (`masks_padding`) also take `forward(features, lengths, n_samples=N)`: valid samples per row of
    N-sample windows.
    """

    masks_padding: ClassVar[bool] = False  # takes valid lengths and masks the zero padding
    freezable: ClassVar[bool] = False  # TorchScript trace + freeze gives the same outputs
    exportable: ClassVar[bool] = False  # an OpenVINO export (fixed input shape, any batch) gives the same outputs
    has_frames: ClassVar[bool] = False  # returns frame embeddings [B, F, Df] third
    has_scores: bool = True  # returns logits first (else None)

    def frame_starts(self, n_rows: int) -> np.ndarray:
        """Front-end row where each frame embedding starts, for an input of n_rows front-end frames."""
        raise ConfigError(f"{type(self).__name__} has no frame-level embeddings")


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


class TaggingModel(SpecFacts, nn.Module, ABC):
    """A torch model as the pipeline runs it (`RunnableModel`): waveforms [B, N] at `sample_rate` -> `ModelOutput`."""

    spec: ModelSpec
    weights: ResolvedFile | None  # where the loaded weights came from (None: random init or a composite)
    needs_torch: ClassVar[bool] = True

    @property
    @abstractmethod
    def has_scores(self) -> bool:
        """Whether this model as loaded gives scores (a released name may load a file with or without a head)."""

    @property
    @abstractmethod
    def has_frames(self) -> bool:
        """Whether outputs carry frame embeddings."""

    @abstractmethod
    def frame_times(self, n_samples: int) -> np.ndarray | None:
        """Start (s, from the window's first sample) of each frame embedding of an n_samples window, or None."""

    @abstractmethod
    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> ModelOutput:
        """Outputs for waveforms [B, N]; `lengths` (valid samples per row) lets padding-aware networks mask."""

    def forward_windows(self, span: Tensor, count: int, step: int, window: int, start: int | None = None,
                        cache: FrameCache | None = None) -> ModelOutput:
        """Outputs for the windows span[k*step : k*step + window], k < count (sharing work where it can: with
        `start`, the span's position in its stream, and the stream's `cache`, also with its previous batch)."""
        return self.prepare_windows(span, count, step, window, start, cache).run()

    def prepare_windows(self, span: Tensor, count: int, step: int, window: int, start: int | None = None,
                        cache: FrameCache | None = None) -> PendingNetwork:
        """`forward_windows` up to the network: its front-end run, the rest pending (the default: all of it)."""
        return PendingNetwork(self, stacked_windows(span, count, step, window))

    @property
    def exportable(self) -> bool:
        """Whether the OpenVINO runtime can run this model's networks."""
        return False

    def optimized_for(self, example: Tensor, runtime: str = "torch") -> "TaggingModel":
        """This model optimised for inference on `example`'s device (outputs unchanged within float rounding).

        The default is the model itself. A front-end + network model on CPU returns a new model sharing
        its modules whose network runs as a frozen TorchScript graph (runtime "torch", freezable
        networks) or an OpenVINO or ONNX Runtime export (runtime "openvino" or "onnxruntime", exportable
        networks, for `example`'s input length); on CUDA it turns its own weights channels-last (in
        place) and returns itself.
        """
        return self


class SingleModel(TaggingModel):
    """A registered model: its front-end, then its network."""

    def __init__(self, spec: ModelSpec, frontend: Frontend, network: Network,
                 weights: ResolvedFile | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.frontend = frontend
        self.network = network
        self.weights = weights
        self.channels_last = False

    @property
    def has_scores(self) -> bool:
        return self.network.has_scores

    @property
    def has_frames(self) -> bool:
        return self.network.has_frames

    @property
    def exportable(self) -> bool:
        return self.network.exportable

    def frame_times(self, n_samples: int) -> np.ndarray | None:
        if not self.has_frames:
            return None
        rows = self.network.frame_starts(self.frontend.frames(n_samples))
        return np.asarray(rows, np.float64) * (self.frontend.hop_length / self.frontend.sample_rate)

    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> ModelOutput:
        check_waveforms(wave, 2, "[batch, samples]")
        with torch.autocast(device_type=wave.device.type, enabled=False):  # front-ends run in float32
            features = self.frontend(wave)
        return self.run_network(features, lengths, wave.shape[-1])

    def prepare_windows(self, span: Tensor, count: int, step: int, window: int, start: int | None = None,
                        cache: FrameCache | None = None) -> PendingNetwork:
        check_waveforms(span, 1, "[samples]")
        with torch.autocast(device_type=span.device.type, enabled=False):  # front-ends run in float32
            if (count > 1 or cache is not None) and self.frontend.can_share_frames(window, step):
                features = self.frontend.windows(span, count, step, window, start, cache)
            else:
                features = self.frontend(stacked_windows(span, count, step, window))
        return PendingNetwork(self.run_network, features)

    def run_network(self, features: Tensor, lengths: Tensor | None = None, n_samples: int | None = None) -> ModelOutput:
        """The network (frozen, in a model from `optimized_for`) on front-end output; lengths where it masks padding."""
        network = self.__dict__.get("_frozen", self.network)
        if self.channels_last and features.dim() == 4:
            features = features.contiguous(memory_format=torch.channels_last)
        if lengths is not None and self.network.masks_padding:
            return ModelOutput(*network(features, lengths.to(features.device), n_samples=n_samples))
        return ModelOutput(*network(features))

    def export_identity(self) -> str | None:
        """What its OpenVINO export is keyed on besides the input: the weights file it was loaded from (None:
        random init, keyed by the network's state)."""
        if self.weights is None:
            return None
        return export_identity(self.spec.family, self.spec.config, self.spec.num_classes,
                               weights_sha256(self.spec, self.weights))

    @property
    def frozen(self) -> bool:
        """Whether the network runs as a frozen graph (TorchScript or OpenVINO)."""
        return "_frozen" in self.__dict__

    @property
    def runtime(self) -> str:
        """What runs the network: "torch" (eager), "torchscript", "openvino" or "onnxruntime"."""
        frozen = self.__dict__.get("_frozen")
        if frozen is None:
            return "torch"
        return {OpenVINONetwork: "openvino", OnnxRuntimeNetwork: "onnxruntime"}.get(type(frozen), "torchscript")

    def optimized_for(self, example: Tensor, runtime: str = "torch") -> "SingleModel":
        if example.device.type == "cuda":
            self.to(memory_format=torch.channels_last)
            self.channels_last = True
            return self
        if self.frozen:
            return self
        if runtime in EXPORT_RUNTIMES:
            if not self.network.exportable:
                raise ConfigError(f"{self.spec.name}: its network has no {runtime} export (use runtime torch)")
            with torch.no_grad():  # conversion traces the network: no inference tensors
                features = self.frontend(example)
            engine = OpenVINONetwork if runtime == "openvino" else OnnxRuntimeNetwork
            frozen = engine(self.network, features, identity=self.export_identity())
        elif self.network.freezable:
            with torch.inference_mode():
                features = self.frontend(example)
            frozen = freeze_for_cpu(self.network, features)
            if frozen is self.network:  # tracing failed (logged): stay eager
                return self
        else:
            return self
        optimized = SingleModel(self.spec, self.frontend, self.network, self.weights).eval()
        optimized.__dict__["_frozen"] = frozen  # not a submodule: not in state_dict
        return optimized

    def _apply(self, fn, *args, **kwargs):  # .to() / .cuda() / .half(): a frozen copy would be stale
        self.__dict__.pop("_frozen", None)
        return super()._apply(fn, *args, **kwargs)
