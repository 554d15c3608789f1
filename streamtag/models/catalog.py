"""The registered model families: adding a family is one new module and one entry in `FAMILY_MODULES`."""
from __future__ import annotations

from . import atstframe, beats, dymn, eat, mobilenet, ssast
from .registry import Registry
from .spec import ModelSpec

FAMILY_MODULES = (mobilenet, dymn, beats, ssast, atstframe, eat)  # each declares FAMILY

REGISTRY = Registry(module.FAMILY for module in FAMILY_MODULES)
MODELS: dict[str, ModelSpec] = REGISTRY.models  # name -> spec, in release-table order


def get_spec(name: str) -> ModelSpec:
    """The registry entry for `name`; an unknown name raises with the closest matches."""
    return REGISTRY.get(name)


def list_models(pattern: str = "*") -> list[ModelSpec]:
    """Registry entries whose name matches a shell-style pattern or contains the text, in release-table order."""
    return REGISTRY.list(pattern)
