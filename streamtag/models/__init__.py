"""Models: the registry, weights and labels resolution, front-ends and one module per family."""
from ..deps import require_torch

require_torch()  # a broken torch install: DependencyError with the fix, not a loader traceback

from .catalog import FAMILY_MODULES, MODELS, REGISTRY, get_spec, list_models
from .factory import BUNDLED_MODEL, DEFAULT_MODEL, create_model, require_model_name, resolve_model
from .labels import Labels, load_labels
from .model import ModelOutput, Network, SingleModel, TaggingModel
from .registry import Family, ModelSpec, Registry
from .weights import ResolvedFile, find_cached, resolve_weights, streamtag_home

__all__ = ["BUNDLED_MODEL", "DEFAULT_MODEL", "FAMILY_MODULES", "Family", "Labels", "MODELS", "ModelOutput",
           "ModelSpec", "Network", "REGISTRY", "Registry", "ResolvedFile", "SingleModel", "TaggingModel",
           "create_model", "find_cached", "get_spec", "list_models", "load_labels", "require_model_name", "resolve_model",
           "resolve_weights", "streamtag_home"]
