"""Builds models: a registered family's front-end and network with weights resolved and loaded, ensembles,
and the one rule for which model to use when none is named."""
from __future__ import annotations

import os

from ..errors import ConfigError, WeightsUnavailableError
from .catalog import REGISTRY, get_spec
from .ensemble import Ensemble
from .labels import Labels, load_labels
from .model import SingleModel, TaggingModel
from .registry import ModelSpec
from .weights import read_checkpoint, resolve_weights

DEFAULT_MODEL = "mn10_as"  # the mission's default (960-d embeddings)
BUNDLED_MODEL = "mn04_as"  # shipped inside the package: works offline


def create_model(name: str | ModelSpec, weights: str | os.PathLike | None = None, pretrained: bool = True,
                 labels: Labels | None = None) -> TaggingModel:
    """Build model `name` (a registry name or a `ModelSpec`) in eval mode; weights from `weights`, else
    cache/bundled/download.

    `pretrained=False` skips loading and leaves the architecture's random initialisation. `labels`
    (default: the AudioSet label file) is the class order outputs follow. A comma-separated name
    ("dymn20_as,mn40_as_ext,mn40_as") builds an ensemble; its `weights`, if given, is a
    comma-separated list of files in the same order.
    """
    if isinstance(name, str) and "," in name:
        names = [n.strip() for n in name.split(",")]
        files = [w.strip() or None for w in str(weights).split(",")] if weights is not None else [None] * len(names)
        if len(files) != len(names):
            raise ConfigError(f"{len(names)} ensemble members but {len(files)} weights files")
        return Ensemble([create_model(n, w, pretrained, labels) for n, w in zip(names, files)]).eval()
    spec = get_spec(name) if isinstance(name, str) else name
    resolved = checkpoint = None
    if pretrained or weights is not None:
        resolved = resolve_weights(spec, weights)
        checkpoint = read_checkpoint(resolved.path)
    source = str(resolved.path) if resolved else spec.name
    frontend, network = REGISTRY.family(spec).build(spec, checkpoint, source, labels or load_labels())
    return SingleModel(spec, frontend, network, resolved).eval()


def require_model_name(model: object, weights: object) -> None:
    """Weights without a model name are refused (which architecture would they be for?)."""
    if weights is not None and model is None:
        raise ConfigError("a weights file needs a model name (--model NAME / model=NAME)")


def resolve_model(model: str | ModelSpec | TaggingModel | None = None, weights: str | os.PathLike | None = None,
                  labels: Labels | None = None) -> tuple[TaggingModel, str | None]:
    """The model to run, and a one-line notice when the default had to fall back.

    A `TaggingModel` is used as it is; a name or spec is built with `weights`; None means the default
    (`mn10_as`), or the bundled `mn04_as` when mn10_as cannot be had offline. Weights without a
    model name are refused (`require_model_name`).
    """
    if isinstance(model, TaggingModel):
        if weights is not None:
            raise ConfigError("weights= applies to a model name, not to an already built model")
        return model, None
    if model is not None:
        return create_model(model, weights=weights, labels=labels), None
    require_model_name(model, weights)
    try:
        return create_model(DEFAULT_MODEL, labels=labels), None
    except WeightsUnavailableError:
        notice = f"using the bundled {BUNDLED_MODEL} ({DEFAULT_MODEL} is not downloaded: streamtag models {DEFAULT_MODEL})"
        return create_model(BUNDLED_MODEL, labels=labels), notice
