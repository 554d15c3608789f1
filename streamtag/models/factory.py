"""Builds models: a registered family's front-end and network with weights resolved and loaded, ensembles,
and the one rule for which model to use when none is named (the choice itself needs no torch)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import ConfigError, WeightsUnavailableError
from .catalog import REGISTRY, get_spec
from .labels import Labels, load_labels
from .registry import Family, ModelSpec
from .weights import ResolvedFile, read_checkpoint, resolve_weights

if TYPE_CHECKING:
    from .model import SingleModel, TaggingModel

DEFAULT_MODEL = "mn10_as"  # the mission's default (960-d embeddings)
BUNDLED_MODEL = "mn04_as"  # shipped inside the package: works offline


def create_model(name: str | ModelSpec, weights: str | os.PathLike | None = None, pretrained: bool = True,
                 labels: Labels | None = None) -> "TaggingModel":
    """Build model `name` (a registry name or a `ModelSpec`) in eval mode; weights from `weights`, else
    cache/bundled/download.

    `pretrained=False` skips loading and leaves the architecture's random initialisation. `labels`
    (default: the AudioSet label file) is the class order outputs follow. A comma-separated name
    ("dymn20_as,mn40_as_ext,mn40_as") builds an ensemble; its `weights`, if given, is a
    comma-separated list of files in the same order.
    """
    if isinstance(name, str) and "," in name:
        from .ensemble import Ensemble
        names = [n.strip() for n in name.split(",")]
        files = [w.strip() or None for w in str(weights).split(",")] if weights is not None else [None] * len(names)
        if len(files) != len(names):
            raise ConfigError(f"{len(names)} ensemble members but {len(files)} weights files")
        return Ensemble([create_model(n, w, pretrained, labels) for n, w in zip(names, files)]).eval()
    spec = get_spec(name) if isinstance(name, str) else name
    resolved = resolve_weights(spec, weights) if pretrained or weights is not None else None
    return build_model(spec, resolved, labels)


def build_model(spec: ModelSpec, weights: ResolvedFile | None, labels: Labels | None = None) -> "SingleModel":
    """The family's front-end and network for `spec`, loaded from `weights` (None: random init), in eval mode."""
    from ..deps import require_torch
    require_torch()
    from .model import SingleModel
    checkpoint = read_checkpoint(weights.path) if weights is not None else None
    source = str(weights.path) if weights else spec.name
    frontend, network = family_of(spec).build(spec, checkpoint, source, labels or load_labels())
    return SingleModel(spec, frontend, network, weights).eval()


def family_of(spec: ModelSpec) -> Family:
    """The registered family that builds `spec`."""
    return REGISTRY.family(spec)


def require_model_name(model: object, weights: object) -> None:
    """Weights without a model name are refused (which architecture would they be for?)."""
    if weights is not None and model is None:
        raise ConfigError("a weights file needs a model name (--model NAME / model=NAME)")


def choose_weights(model: str | ModelSpec | None, weights: str | os.PathLike | None = None
                   ) -> tuple[ModelSpec, ResolvedFile, str | None]:
    """The registry entry and weights file a single model name or spec means (None: the default, falling back
    to the bundled model offline), and the one-line notice when it fell back; without torch."""
    if model is not None:
        spec = get_spec(model) if isinstance(model, str) else model
        return spec, resolve_weights(spec, weights), None
    require_model_name(model, weights)
    try:
        spec = get_spec(DEFAULT_MODEL)
        return spec, resolve_weights(spec), None
    except WeightsUnavailableError:
        notice = f"using the bundled {BUNDLED_MODEL} ({DEFAULT_MODEL} is not downloaded: streamtag models {DEFAULT_MODEL})"
        spec = get_spec(BUNDLED_MODEL)
        return spec, resolve_weights(spec), notice


def resolve_model(model: "str | ModelSpec | TaggingModel | None" = None, weights: str | os.PathLike | None = None,
                  labels: Labels | None = None) -> "tuple[TaggingModel, str | None]":
    """The model to run, and a one-line notice when the default had to fall back.

    A `TaggingModel` is used as it is; a name or spec is built with `weights`; None means the default
    (`mn10_as`), or the bundled `mn04_as` when mn10_as cannot be had offline. Weights without a
    model name are refused (`require_model_name`).
    """
    if model is not None and not isinstance(model, (str, ModelSpec)):  # an already built TaggingModel
        if weights is not None:
            raise ConfigError("weights= applies to a model name, not to an already built model")
        return model, None
    if isinstance(model, str) and "," in model:
        return create_model(model, weights=weights, labels=labels), None
    spec, resolved, notice = choose_weights(model, weights)
    return build_model(spec, resolved, labels), notice
