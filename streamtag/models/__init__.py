"""Models: the registry, weights and labels resolution, front-ends and one package per family.

Importing it loads no torch: the registry, weights and labels are plain Python, and the torch
classes below (`TaggingModel`, `SingleModel`, `Network`, `ModelOutput`) are imported on first use,
raising `DependencyError` with the fix when torch cannot load.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .catalog import FAMILY_MODULES, MODELS, REGISTRY, get_spec, list_models
from .factory import BUNDLED_MODEL, DEFAULT_MODEL, create_model, require_model_name, resolve_model
from .labels import Labels, load_labels
from .registry import Family, ModelSpec, Registry
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


__all__ = ["BUNDLED_MODEL", "DEFAULT_MODEL", "FAMILY_MODULES", "Family", "Labels", "MODELS", "ModelOutput",
           "ModelSpec", "Network", "REGISTRY", "Registry", "ResolvedFile", "SingleModel", "TaggingModel",
           "create_model", "find_cached", "get_spec", "list_models", "load_labels", "require_model_name", "resolve_model",
           "resolve_weights", "streamtag_home"]
