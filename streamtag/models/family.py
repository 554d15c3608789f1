"""A model family: its registry entries and how to build a front-end and network for one of them.

It sits below `model.py`: the types it names are imported for type checking only, and nothing it imports
imports it back.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ConfigError
from .spec import ModelSpec

if TYPE_CHECKING:
    from .frontends import Frontend
    from .labels import Labels
    from .model import Network


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
