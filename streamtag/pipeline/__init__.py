"""The streaming pipeline: worker, dispatcher, and the `Tagger` entry point.

Importing it loads no torch; `ModelRunner` and `resolve_device` (torch) are imported on first use.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .backend import Backend, Inferred
from .dispatcher import AudioTap, FrontEndSubscriber
from .result import TaggerStats, WindowResult
from .stream import Stream
from .tagger import DefaultModelFallback, ShortWindowWarning, Tagger, open_backend

if TYPE_CHECKING:
    from ..models.devices import resolve_device
    from .runner import ModelRunner

_TORCH_NAMES = {"ModelRunner": ".runner", "resolve_device": "..models.devices"}


def __getattr__(name: str) -> Any:
    if name not in _TORCH_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ..deps import require_torch
    require_torch()
    value = vars(importlib.import_module(_TORCH_NAMES[name], __name__))[name]
    globals()[name] = value
    return value


__all__ = ["AudioTap", "Backend", "FrontEndSubscriber", "DefaultModelFallback", "Inferred", "ModelRunner", "ShortWindowWarning", "Stream",
           "Tagger", "TaggerStats", "WindowResult", "open_backend", "resolve_device"]
