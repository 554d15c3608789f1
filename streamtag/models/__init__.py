"""Models: the registry, weights and labels resolution, front-ends and one module per family."""
from ..deps import require_torch

require_torch()  # a broken torch install: DependencyError with the fix, not a loader traceback

from .factory import FAMILIES, TaggingModel, create_model
from .labels import Labels, load_labels
from .registry import BUNDLED_MODEL, DEFAULT_MODEL, MODELS, ModelSpec, get_spec, list_models
from .weights import ResolvedFile, find_cached, resolve_weights, streamtag_home

__all__ = ["BUNDLED_MODEL", "DEFAULT_MODEL", "FAMILIES", "Labels", "MODELS", "ModelSpec", "ResolvedFile",
           "TaggingModel", "create_model", "find_cached", "get_spec", "list_models", "load_labels",
           "resolve_weights", "streamtag_home"]
