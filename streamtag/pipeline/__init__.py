"""The streaming pipeline: worker, dispatcher, and the `Tagger` entry point."""
from .result import TaggerStats, WindowResult
from .runner import ModelRunner, resolve_device
from .stream import Stream
from .tagger import DefaultModelFallback, ShortWindowWarning, Tagger, load_default_model

__all__ = ["DefaultModelFallback", "ShortWindowWarning", "ModelRunner", "Stream", "Tagger", "TaggerStats", "WindowResult",
           "load_default_model", "resolve_device"]
