"""The model registry: weights facts per released model, collected from the family modules that declare them.

The registry knows no family: each family module declares a `Family` (its entries and its
builder), and `catalog.py` hands the families to a `Registry`.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..errors import ConfigError, UnknownModelError

if TYPE_CHECKING:
    from .frontends import Frontend
    from .labels import Labels
    from .model import Network



def model_key(name: str) -> str:
    """`name` as registry names are written: lower case, `_` for `-` and spaces."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")

class _ReadOnlyArch(dict):
    """The deprecated `spec.arch` view: readable, and a clear error instead of a silent no-op on writes."""

    def __setitem__(self, key, value) -> None:
        raise ConfigError(f"spec.arch is read-only since streamtag 0.2: use "
                          f"create_model(spec.with_config({key}={value!r}))")

    update = setdefault = pop = popitem = clear = __delitem__ = __setitem__  # type: ignore[assignment]


@dataclass(frozen=True)
class ModelSpec:
    """Weights facts of one released model; its architecture and front-end settings are in `config`.

    `config` is the family's own frozen config (e.g. `mobilenet.EfficientATConfig`); it describes
    the released architecture, which a checkpoint's own shapes may override when it loads.
    """

    name: str
    family: str  # the `Family` that builds it
    config: object  # the family's typed architecture / front-end config
    file_name: str
    url: str
    sha256: str | None
    license: str
    sample_rate: int  # model input rate
    embedding_dim: int  # of the released model (a checkpoint's own config may differ)
    min_samples: int  # shortest window or hop accepted, in samples at sample_rate
    num_classes: int = 527  # 0: an embedding-only (self-supervised) release, results carry scores=None
    params_millions: float | None = None
    macs_billions: float | None = None
    mAP: float | None = None
    frame_dim: int | None = None  # size of the frame-level embeddings (None: the model has none)
    frame_hop_s: float | None = None  # time between frame embeddings
    trained_window_s: float | None = None  # input length the model was trained on (warn far below)
    page: str | None = None  # where a person downloads the file, when `url` is not a direct download

    @property
    def has_scores(self) -> bool:
        return self.num_classes > 0

    def with_config(self, **changes) -> "ModelSpec":
        """This spec with some of its family config's fields changed (e.g. EAT `target_length=1024`)."""
        try:
            return dataclasses.replace(self, config=dataclasses.replace(self.config, **changes))
        except TypeError as e:
            raise ConfigError(f"{self.name}: {e}") from None

    @property
    def arch(self) -> dict:
        """Deprecated (0.2): the family config's fields as a read-only dict; use `spec.config`."""
        import warnings
        warnings.warn("ModelSpec.arch is deprecated: read spec.config, change it with spec.with_config(...)",
                      DeprecationWarning, stacklevel=2)
        return _ReadOnlyArch(dataclasses.asdict(self.config))


# (spec, loaded checkpoint or None for the released architecture with random weights, its path for messages,
# the label file the outputs follow) -> (front-end, network)
Builder = Callable[[ModelSpec, object, str, "Labels"], "tuple[Frontend, Network]"]


@dataclass(frozen=True)
class Family:
    """One architecture family: its registry entries and how to build a network for one of them."""

    name: str
    build: Builder
    entries: tuple[ModelSpec, ...]
    # its networks have an OpenVINO export and its configs a `numpy_frontend()` (the run without torch)
    exportable: bool = False

    def __post_init__(self) -> None:
        strays = [s.name for s in self.entries if s.family != self.name]
        if strays:
            raise ConfigError(f"family {self.name!r} declares entries of another family: {', '.join(strays)}")


class Registry:
    """Released models by name, in declaration order, from a sequence of families."""

    def __init__(self, families: Iterable[Family]) -> None:
        self.families: dict[str, Family] = {}
        self.models: dict[str, ModelSpec] = {}
        for family in families:
            if family.name in self.families:
                raise ConfigError(f"model family {family.name!r} is declared twice")
            self.families[family.name] = family
            for spec in family.entries:
                if spec.name in self.models:
                    raise ConfigError(f"model {spec.name!r} is declared twice")
                self.models[spec.name] = spec

    def get(self, name: str) -> ModelSpec:
        """The entry for `name`, matched without regard to case, spaces or `-`/`_` (MN10-AS is mn10_as); an
        unknown name raises with the closest matches."""
        spec = self.models.get(name)
        if spec is not None:
            return spec
        key = model_key(str(name))
        for registered, spec in self.models.items():
            if model_key(registered) == key:
                return spec
        close = difflib.get_close_matches(key, list(self.models), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}{hint} (`streamtag models` lists all {len(self.models)})")

    def list(self, pattern: str = "*") -> list[ModelSpec]:
        """The entry named `pattern`, else those matching it as a shell-style pattern, or containing it; in order."""
        if pattern in self.models:  # a full name: that entry only
            return [self.models[pattern]]
        pattern = model_key(pattern)
        if not any(c in pattern for c in "*?["):
            return [s for s in self.models.values() if pattern in s.name]
        return [s for s in self.models.values() if fnmatch.fnmatch(s.name, pattern)]

    def family(self, spec: ModelSpec) -> Family:
        """The family that builds `spec`."""
        try:
            return self.families[spec.family]
        except KeyError:
            raise UnknownModelError(f"{spec.name}: no model family {spec.family!r} is registered") from None


def network_names(package: str) -> Callable[[str], Any]:
    """A family package's module `__getattr__`: the names of its network module (`<package>.network`: `MobileNetAT`,
    `BEATs`, ...), imported, with torch, on first use."""
    def __getattr__(name: str) -> Any:
        if name.startswith("__") or name == "network":  # not a network name (`from . import network` asks first)
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.network"), name)
    return __getattr__


def network_builder(package: str) -> Callable:
    """A family's `build(spec, checkpoint, source, labels)`: its network module's, imported (with torch) when a
    model is built."""
    def build(spec: ModelSpec, checkpoint: object | None, source: str, labels: "Labels"):
        return importlib.import_module(f"{package}.network").build(spec, checkpoint, source, labels)
    return build
