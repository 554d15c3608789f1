"""Live query-by-example: events when a stream's window embedding comes close to an example's, with no training.

Each example (a recording of the sound) becomes a pseudo-label whose score is the cosine similarity of the window
to the example's nearest window; an `EventDetector` turns those scores into events with the same hysteresis,
smoothing and outputs as label events.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..errors import ConfigError
from ..models.labels import Labels
from ..outputs.events import Event, EventDetector, EventSettings, EventSubscriber
from ..pipeline.result import WindowResult
from .search import Example, example_embeddings

if TYPE_CHECKING:
    from ..pipeline.tagger import Tagger

HYSTERESIS = 0.05  # an open example event stays open down to this much below the similarity threshold
EXAMPLE_MID_PREFIX = "example:"


@dataclass(frozen=True)
class Examples:
    """Named example sounds: for each, the unit embeddings of its windows ([E_i, D])."""

    names: tuple[str, ...]
    vectors: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not self.names or len(self.names) != len(self.vectors):
            raise ConfigError("query-by-example needs at least one example, each with its windows")
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"example names must differ, got {list(self.names)}")
        if any(v.ndim != 2 or not len(v) for v in self.vectors) or len({v.shape[1] for v in self.vectors}) != 1:
            raise ConfigError("every example needs at least one window embedding of one size")

    @classmethod
    def from_files(cls, tagger: "Tagger", paths: Sequence[str | os.PathLike],
                   names: Sequence[str] | None = None) -> "Examples":
        """Examples embedded with `tagger` (the stream's model and window): each file's loud windows, or a
        `file:START-END` stretch's; named by the file's stem unless `names` are given."""
        files = [os.fspath(p) for p in paths]
        names = list(names) if names is not None else [Path(Example.parse(f).path or f).stem for f in files]
        return cls(tuple(names), tuple(example_embeddings(tagger, f) for f in files))

    @property
    def labels(self) -> Labels:
        """The examples as labels (display name = the example's name), for event outputs."""
        return Labels(tuple(EXAMPLE_MID_PREFIX + n for n in self.names), self.names)

    def similarity(self, embedding: np.ndarray) -> np.ndarray:
        """[N] cosine similarity of one window embedding to each example (its nearest window), in [0, 1]."""
        e = np.asarray(embedding, np.float32)
        e = e / max(float(np.linalg.norm(e)), 1e-12)
        return np.array([float((v @ e).max()) for v in self.vectors], np.float32).clip(0, 1)


@dataclass(frozen=True)
class ExampleOptions:
    """Live query-by-example as a user gives it: example files (or FILE:START-END), the similarity that opens an
    event, and an optional events file (JSONL, or CSV by its extension)."""

    paths: tuple[str, ...] = ()
    similarity: float = 0.9
    events: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.similarity <= 1:
            raise ConfigError(f"the similarity threshold must be in (0, 1], got {self.similarity}")
        for p in self.paths:
            path = Example.parse(p).path
            if path is not None and "://" not in path and not os.path.exists(path):
                raise ConfigError(f"example not found: {path}")
        if self.events is not None and not self.paths:
            raise ConfigError("--events writes example events: give --example")

    @property
    def active(self) -> bool:
        return bool(self.paths)


def example_settings(similarity: float, base: EventSettings | None = None) -> EventSettings:
    """Event settings that open at `similarity` and hold down to `HYSTERESIS` below it (else as `base`)."""
    if not 0 < similarity <= 1:
        raise ConfigError(f"the similarity threshold must be in (0, 1], got {similarity}")
    return dataclasses.replace(base or EventSettings(), on=similarity, off=max(0.0, similarity - HYSTERESIS),
                               labels=None, per_class=())


class ExampleEvents:
    """A subscriber: an `Event` (label = the example's name) whenever the stream sounds like an example."""

    def __init__(self, examples: Examples, similarity: float = 0.9, settings: EventSettings | None = None,
                 callback: Callable[[Event], object] | None = None, hop_s: float | None = None,
                 on_open: Callable[[str, float], None] | None = None) -> None:
        self.examples = examples
        self.labels = examples.labels
        self.settings = example_settings(similarity, settings)
        self.events: list[Event] = []
        self._sub = EventSubscriber(EventDetector(self.labels, self.settings, on_open, hop_s=hop_s),
                                    callback or (lambda ev: None))
        self.events = self._sub.events

    def scored(self, r: WindowResult) -> WindowResult:
        """The window with the examples' similarities as its scores (and the examples as its labels)."""
        return dataclasses.replace(r, scores=self.examples.similarity(r.embedding), labels=self.labels)

    def __call__(self, r: WindowResult) -> None:
        self._sub(self.scored(r))

    def close(self, end_s: float | None = None) -> None:
        """End of stream: the events still open close."""
        self._sub.close(end_s)


__all__ = ["EXAMPLE_MID_PREFIX", "HYSTERESIS", "ExampleEvents", "ExampleOptions", "Examples", "example_settings"]
