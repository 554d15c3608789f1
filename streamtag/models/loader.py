"""The one road from a model name to a running network: `ModelChoice` (what to run), `RunTarget` (where and how)
and `load(...)`, which resolves weights, checks memory before anything is built, chooses the runtime once, and
uses or makes the cached export. Importing it loads no torch; `load` imports torch only for what needs it.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..deps import cuda_may_be_present
from ..errors import ConfigError, WeightsUnavailableError
from ..memory import check_window_memory
from ..windows import WindowSpec
from .catalog import REGISTRY, get_spec
from .head_info import HeadInfo, check_head_mode, head_windows
from .labels import Labels
from .runtimes import RUNTIMES, check_runtime, choose_runtime
from .spec import ModelSpec
from .weights import ResolvedFile, read_checkpoint, resolve_weights

if TYPE_CHECKING:
    import torch

    from .exported import ExportedModel
    from .interface import RunnableModel
    from .model import SingleModel, TaggingModel

DEFAULT_MODEL = "mn10_as"  # the mission's default (960-d embeddings)
BUNDLED_MODEL = "mn04_as"  # shipped inside the package: works offline
DEFAULT_WINDOWS = (10.0, 2.5)  # window and hop (s) of `tag` and the Python API
LIVE_WINDOWS = (1.0, 0.5)  # of `listen` (a tag every half second) and `train` (short sounds)
PRECISION_NAMES = ("fp32", "fp16", "bf16")
SHORT_WINDOW_FRACTION = 0.5  # warn below this fraction of the training input length


class DefaultModelFallback(UserWarning):
    """The default model's weights are not available; the bundled model is used instead."""


class ShortWindowWarning(UserWarning):
    """The window is much shorter than the inputs the model was trained on; scores may suffer."""


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


@dataclass(frozen=True)
class ModelChoice:
    """Which model a run uses, as a user names it: the only parser of model strings.

    members: registry names or specs, one, or several for an ensemble (empty: the default, or a head's own
    backbone). weights: one file per member, or None each for the official ones. head: a head file
    (`streamtag train`) whose classes replace the model's ("replace") or follow them ("append").
    """

    members: tuple[str | ModelSpec, ...] = ()
    weights: tuple[str | None, ...] = ()
    head: str | None = None
    head_mode: str = "replace"

    def __post_init__(self) -> None:
        check_head_mode(self.head_mode)
        if any(w is not None for w in self.weights) and not self.members:
            raise ConfigError("a weights file needs a model name (--model NAME / model=NAME)")
        if self.weights and len(self.weights) != len(self.members):
            raise ConfigError(f"{len(self.members)} ensemble members but {len(self.weights)} weights files")
        if any(isinstance(m, str) and not m for m in self.members):
            raise ConfigError("an empty model name (a stray comma in --model?)")

    @classmethod
    def parse(cls, model: "str | ModelSpec | None" = None, weights: "str | os.PathLike | None" = None,
              head: "str | os.PathLike | None" = None, head_mode: str = "replace") -> "ModelChoice":
        """From a user's strings: "a,b" names an ensemble, whose weights (if given) are "fileA,fileB"."""
        members = () if model is None else (model,) if isinstance(model, ModelSpec) else _split(model)
        files: tuple[str | None, ...] = ()
        if weights is not None:
            texts = _split(os.fspath(weights)) if len(members) > 1 else (os.fspath(weights),)
            files = tuple(os.path.abspath(t) if t else None for t in texts)
        return cls(members, files, None if head is None else os.path.abspath(os.fspath(head)), head_mode)

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1

    def head_info(self) -> HeadInfo | None:
        """What the head file says (its classes, backbone, windows), or None without a head."""
        if self.head is None:
            return None
        from .head import read_head_info
        return read_head_info(self.head)

    def windows(self, window: float | None, hop: float | None,
                defaults: tuple[float, float] = DEFAULT_WINDOWS) -> tuple[float, float]:
        """Window and hop in seconds: those given, else the head's, else `defaults`."""
        return head_windows(self.head_info(), window, hop, defaults)

    def output_labels(self, labels: Labels) -> Labels:
        """The classes a run's outputs name: the label file's, or the head's (after them, in append mode)."""
        info = self.head_info()
        return labels if info is None else info.labels(labels, self.head_mode)

    def describe(self) -> str:
        """The model as a user would name it (the default: empty)."""
        return ",".join(m if isinstance(m, str) else m.name for m in self.members)


@dataclass(frozen=True)
class RunTarget:
    """Where and how the network runs: device (auto, cpu, cuda[:N]), precision (fp32, bf16, fp16 on CUDA),
    runtime on CPU (auto, torch, openvino, onnxruntime), frame embeddings, and whether to optimise it."""

    device: str = "auto"
    precision: str = "fp32"
    runtime: str = "auto"
    frames: bool = False
    optimize: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", str(self.device).strip().lower())
        if self.precision not in PRECISION_NAMES:
            raise ConfigError(f"precision must be one of {', '.join(PRECISION_NAMES)}, got {self.precision!r}")
        check_runtime(self.runtime)

    @property
    def known_cpu(self) -> bool:
        """Whether this target is the CPU, told without importing torch ("auto" where no CUDA GPU can be present)."""
        return self.device == "cpu" or (self.device == "auto" and not cuda_may_be_present())

    def torch_device(self) -> "torch.device":
        """The torch device: 'auto' picks CUDA when present; an unavailable or unknown one is a ConfigError."""
        from .devices import resolve_device
        return resolve_device(self.device)


@dataclass(frozen=True)
class Resolved:
    """A choice resolved without torch: the specs and weights files of its members, its head, and the notice
    when the default fell back to the bundled model."""

    specs: tuple[ModelSpec, ...]
    files: tuple[ResolvedFile, ...]
    head: HeadInfo | None
    notice: str | None

    @property
    def sample_rate(self) -> int:
        rates = {s.sample_rate for s in self.specs}
        if len(rates) != 1:
            raise ConfigError(f"ensemble members must share one input rate, got {sorted(rates)}")
        return rates.pop()

    @property
    def min_samples(self) -> int:
        return max(s.min_samples for s in self.specs)


def resolve(choice: ModelChoice) -> Resolved:
    """The registry entries and weights files `choice` means (no torch): the default model, falling back to the
    bundled one offline with a notice; a head's own backbone when no model is named."""
    info = choice.head_info()
    members = choice.members or ((info.backbone,) if info is not None else ())
    if not members:
        try:
            spec = get_spec(DEFAULT_MODEL)
            return Resolved((spec,), (resolve_weights(spec),), info, None)
        except WeightsUnavailableError:
            spec = get_spec(BUNDLED_MODEL)
            notice = (f"using the bundled {BUNDLED_MODEL} ({DEFAULT_MODEL} is not downloaded: "
                      f"streamtag download {DEFAULT_MODEL})")
            return Resolved((spec,), (resolve_weights(spec),), info, notice)
    specs = tuple(get_spec(m) if isinstance(m, str) else m for m in members)
    files = choice.weights or (None,) * len(specs)
    return Resolved(specs, tuple(resolve_weights(s, w) for s, w in zip(specs, files)), info, None)


@dataclass(frozen=True)
class Loaded:
    """A model ready to run: the model (torch, or its export run without torch), the runtime chosen for it, the
    windows at its rate, the classes its outputs name, and the notices a user should see."""

    model: "RunnableModel"
    runtime: str
    window: WindowSpec
    labels: Labels
    notices: tuple[tuple[type[Warning], str], ...] = ()


def build_network(spec: ModelSpec, weights: ResolvedFile | None, labels: Labels) -> "SingleModel":
    """The family's front-end and network for `spec`, loaded from `weights` (None: random init), in eval mode."""
    from ..deps import require_torch
    require_torch()
    from .model import SingleModel
    checkpoint = read_checkpoint(weights.path) if weights is not None else None
    source = str(weights.path) if weights else spec.name
    frontend, network = REGISTRY.family(spec).build(spec, checkpoint, source, labels)
    return SingleModel(spec, frontend, network, weights).eval()


def _torch_model(specs: tuple[ModelSpec, ...], files: "tuple[ResolvedFile | None, ...]", labels: Labels
                 ) -> "TaggingModel":
    models = [build_network(s, f, labels) for s, f in zip(specs, files)]
    if len(models) == 1:
        return models[0]
    from .ensemble import Ensemble
    return Ensemble(models).eval()


def _exported(spec: ModelSpec, weights: ResolvedFile, labels: Labels, window: int) -> "ExportedModel | None":
    """The cached export for `window`-sample inputs, made now when missing (every run of this model then has the
    same front-end); None when the cache cannot be written (the torch model then runs, exporting in memory)."""
    from .exported import ExportedModel
    found = ExportedModel.from_cache(spec, weights, window)
    if found is not None:
        return found
    import torch
    build_network(spec, weights, labels).optimized_for(torch.zeros(1, window), "openvino")
    return ExportedModel.from_cache(spec, weights, window)


def load(choice: ModelChoice, labels: Labels, target: RunTarget = RunTarget(), window: float | None = None,
         hop: float | None = None, defaults: tuple[float, float] = DEFAULT_WINDOWS, ring_seconds: float | None = None,
         model: "RunnableModel | None" = None) -> Loaded:
    """Resolve `choice`, check that one window fits in memory before anything is built, choose the runtime once,
    and return the model: the cached export (numpy front-end, no torch) for an exportable model in fp32 on the CPU,
    made at the first use; else the torch model (ensembles, heads, DyMN, transformers, CUDA, bf16/fp16).
    `model`: an already built model to run instead of the choice's members (its head, if any, still applies)."""
    if model is not None and (choice.members or choice.weights):
        raise ConfigError("weights= applies to a model name, not to an already built model")
    resolved = resolve(choice) if model is None else Resolved((model.spec,), (), choice.head_info(), None)
    window_s, hop_s = head_windows(resolved.head, window, hop, defaults)
    spec_w = WindowSpec.from_seconds(window_s, hop_s, resolved.sample_rate, resolved.min_samples)
    check_window_memory(spec_w, ring_seconds)
    notices = [(DefaultModelFallback, resolved.notice)] if resolved.notice else []
    exportable = model.exportable if model is not None else all(REGISTRY.family(s).exportable
                                                                   for s in resolved.specs)
    device = "cpu" if target.known_cpu else target.torch_device()
    runtime = choose_runtime(target.runtime, exportable, device, target.precision)
    if (model is None and len(resolved.specs) == 1 and resolved.head is None and runtime == "openvino"
            and target.optimize and not target.frames):
        model = _exported(resolved.specs[0], resolved.files[0], labels, spec_w.window)
        if model is not None:
            return _checked(Loaded(model, runtime, spec_w, labels, tuple(notices)), target)
    torch_model = model if model is not None else _torch_model(resolved.specs, resolved.files, labels)
    if resolved.head is not None:
        from .head import HeadedModel, attach_head
        if not isinstance(torch_model, HeadedModel):
            torch_model = attach_head(torch_model, resolved.head.path, choice.head_mode, spec_w.window_s)
        labels = resolved.head.labels(labels, choice.head_mode)
    return _checked(Loaded(torch_model, runtime, spec_w, labels, tuple(notices)), target)


def _checked(loaded: Loaded, target: RunTarget) -> Loaded:
    """`loaded`, refused when it cannot give what the target asks, with a notice when its windows are short."""
    spec, window_s = loaded.model.spec, loaded.window.window_s
    if target.frames and not loaded.model.has_frames:
        raise ConfigError(f"{spec.name} has no frame-level embeddings (frames=True / --frames)")
    if spec.num_classes not in (0, len(loaded.labels)):
        raise ConfigError(f"{spec.name} has {spec.num_classes} outputs but the label file has "
                          f"{len(loaded.labels)} classes")
    trained = spec.trained_window_s
    if trained and window_s < SHORT_WINDOW_FRACTION * trained:
        text = (f"{spec.name} was trained on {trained:g} s inputs; {window_s:g} s windows are much shorter and "
                "its outputs may be less reliable")
        return dataclasses.replace(loaded, notices=(*loaded.notices, (ShortWindowWarning, text)))
    return loaded


def emit_notices(loaded: Loaded, stacklevel: int = 3) -> None:
    """The loader's notices as Python warnings (the CLI shows them as one line each)."""
    for category, text in loaded.notices:
        warnings.warn(text, category, stacklevel=stacklevel)


def create_model(name: "str | ModelSpec", weights: "str | os.PathLike | None" = None, pretrained: bool = True,
                 labels: Labels | None = None) -> "TaggingModel":
    """The torch model `name` (a registry name or spec; "a,b" an ensemble with "fileA,fileB" weights) in eval and
    inference mode, as timm's `create_model`: official or `weights` loaded, or random with `pretrained=False`."""
    from .labels import load_labels
    choice = ModelChoice.parse(name, weights)
    if not choice.members:
        raise ConfigError("create_model needs a model name (see `streamtag models`)")
    if pretrained or choice.weights:
        resolved = resolve(choice)
        specs, files = resolved.specs, resolved.files
    else:
        specs = tuple(get_spec(m) if isinstance(m, str) else m for m in choice.members)
        files = (None,) * len(specs)
    return _torch_model(specs, files, labels or load_labels()).requires_grad_(False)


__all__ = ["BUNDLED_MODEL", "DEFAULT_MODEL", "DEFAULT_WINDOWS", "DefaultModelFallback", "LIVE_WINDOWS", "Loaded", "ModelChoice",
           "PRECISION_NAMES", "RUNTIMES", "Resolved", "RunTarget", "ShortWindowWarning", "build_network",
           "create_model", "emit_notices", "load", "resolve"]
