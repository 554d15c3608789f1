"""streamtag: streaming sliding-window AudioSet tagging (scores and embeddings per window).

Importing the package loads nothing heavy: the names below that need torch are imported on first
use (`from streamtag import Tagger`), which raises `DependencyError` with the fix when torch cannot load.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (AudioReadError, ConfigError, DependencyError, LabelsError, OutputError, PipelineError,
                     StreamtagError, UnknownModelError, WeightsError, WeightsUnavailableError)
from .notices import show_warnings_as_lines
from .threads import configure_threads

_LAZY = {"ArraySource": ".audio", "FileSource": ".audio", "ModelSpec": ".models", "create_model": ".models",
         "list_models": ".models", "load_labels": ".models", "Tagger": ".pipeline", "TaggerStats": ".pipeline",
         "WindowResult": ".pipeline", "train_head": ".engines.train", "tag_file": ".pipeline.oneshot",
         "FileTags": ".pipeline.oneshot", "Index": ".index",
         "Examples": ".index", "ExampleEvents": ".index"}

if TYPE_CHECKING:
    from .audio import ArraySource, FileSource
    from .models import ModelSpec, create_model, list_models, load_labels
    from .engines.train import train_head
    from .index import ExampleEvents, Examples, Index
    from .pipeline import Tagger, TaggerStats, WindowResult
    from .pipeline.oneshot import FileTags, tag_file


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'streamtag' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


__all__ = ["ArraySource", "AudioReadError", "ConfigError", "DependencyError", "FileSource", "FileTags", "LabelsError",
           "ExampleEvents", "Examples", "Index", "ModelSpec",
           "OutputError", "PipelineError", "StreamtagError", "Tagger", "TaggerStats", "UnknownModelError", "WeightsError",
           "WeightsUnavailableError", "WindowResult", "__version__", "configure_threads", "create_model",
           "list_models", "load_labels", "show_warnings_as_lines", "tag_file", "train_head"]
