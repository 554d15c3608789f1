"""Models: the registry, weights and labels resolution, front-ends and one package per family.

Importing it loads no torch: the registry, weights and labels are plain Python, and the torch
classes below (`TaggingModel`, `SingleModel`, `Network`, `ModelOutput`) are imported on first use,
raising `DependencyError` with the fix when torch cannot load.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .catalog import FAMILY_MODULES, MODELS, REGISTRY, get_spec, list_models
from .family import Family
from .labels import Labels, load_labels
from .loader import (BUNDLED_MODEL, DEFAULT_MODEL, DEFAULT_WINDOWS, Loaded, ModelChoice, RunTarget, create_model,
                     load)
from .registry import Registry
from .spec import ModelSpec
from .weights import ResolvedFile, find_cached, resolve_weights, streamtag_home

if TYPE_CHECKING:
    from .model import ModelOutput, Network, SingleModel, TaggingModel

_TORCH_NAMES = {"ModelOutput": ".model", "Network": ".model", "SingleModel": ".model", "TaggingModel": ".model"}


def __getattr__(name: str) -> Any:
    if name not in _TORCH_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ..deps import require_torch
    require_torch()  # a broken torch install: DependencyError with the fix, not a loader traceback
    value = getattr(importlib.import_module(_TORCH_NAMES[name], __name__), name)
    globals()[name] = value
    return value


__all__ = ["BUNDLED_MODEL", "DEFAULT_MODEL", "DEFAULT_WINDOWS", "FAMILY_MODULES", "Family", "Labels", "Loaded",
           "MODELS", "ModelChoice", "ModelOutput", "ModelSpec", "Network", "REGISTRY", "Registry", "ResolvedFile",
           "RunTarget", "SingleModel", "TaggingModel", "create_model", "find_cached", "get_spec", "list_models", "load",
           "load_labels", "resolve_weights", "streamtag_home"]
