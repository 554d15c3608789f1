"""The streaming pipeline: worker, dispatcher, and the `Tagger` entry point."""
from .result import TaggerStats, WindowResult
from .runner import ModelRunner, resolve_device
from .stream import Stream
from .tagger import DefaultModelFallback, ShortWindowWarning, Tagger

__all__ = ["DefaultModelFallback", "ShortWindowWarning", "ModelRunner", "Stream", "Tagger", "TaggerStats", "WindowResult", "resolve_device"]
