"""`streamtag.tag_file(path)`: one call that tags a whole recording and returns its windows as arrays."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from ..models.labels import Labels

if TYPE_CHECKING:
    from ..models.interface import RunnableModel
    from ..models.loader import ModelChoice
    from ..models.spec import ModelSpec


@dataclass(frozen=True, eq=False)
class FileTags:
    """Every window of one recording: K windows, C classes, D embedding dimensions."""

    path: str
    model: str
    window_s: float
    hop_s: float
    start_s: np.ndarray = field(repr=False)  # float64 [K]
    end_s: np.ndarray = field(repr=False)  # float64 [K]
    scores: np.ndarray | None = field(repr=False)  # float32 [K, C]; None for embedding-only models
    embeddings: np.ndarray = field(repr=False)  # float32 [K, D]
    labels: Labels = field(repr=False)
    lost_samples: np.ndarray = field(repr=False)  # int64 [K]

    def __post_init__(self) -> None:
        k = len(self.start_s)
        shapes = [len(self.end_s), len(self.embeddings), len(self.lost_samples)]
        if self.scores is not None:
            shapes.append(len(self.scores))
        if any(n != k for n in shapes):
            raise ConfigError(f"FileTags arrays disagree on the window count: {[k, *shapes]}")

    def __len__(self) -> int:
        return len(self.start_s)

    def score(self, label: str) -> np.ndarray:
        """One label's score in every window ([K]), by display name or mid."""
        if self.scores is None:
            raise ConfigError(f"{self.model} gives embeddings only: its windows have no scores")
        return self.scores[:, self.labels.index(label)]

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The k labels with the highest peak score over the recording, as (name, peak), best first."""
        if self.scores is None or not len(self):
            return []
        peak = self.scores.max(axis=0)
        return [(self.labels.names[i], float(peak[i])) for i in np.argsort(-peak, kind="stable")[:k]]


def tag_file(path: str | os.PathLike, model: "str | ModelSpec | ModelChoice | RunnableModel | None" = None,
             window: float | None = None, hop: float | None = None, **tagger_options: Any) -> FileTags:
    """Tag a whole recording (streamed, never loaded whole) and return its windows' times, scores and embeddings.

    `model`, `window`, `hop` and any other keyword (`device`, `weights`, `labels`, `runtime`, ...) are those of
    `Tagger`. For long recordings whose results you do not need all at once, iterate `Tagger.tag_file` instead."""
    from .tagger import Tagger
    tagger = Tagger(model, window=window, hop=hop, **tagger_options)
    starts, ends, scores, embeddings, lost = [], [], [], [], []
    name = labels = None
    for r in tagger.tag_file(path):
        starts.append(r.start_s)
        ends.append(r.end_s)
        embeddings.append(r.embedding)
        lost.append(r.lost_samples)
        if r.scores is not None:
            scores.append(r.scores)
        name, labels = r.model, r.labels
    return FileTags(
        path=os.fspath(path), model=name or tagger.model_name, window_s=tagger.window.window_s,
        hop_s=tagger.window.hop_s,
        start_s=np.asarray(starts, np.float64), end_s=np.asarray(ends, np.float64),
        scores=np.stack(scores) if scores else None,
        embeddings=np.stack(embeddings) if embeddings else np.zeros((0, 0), np.float32),
        labels=labels if labels is not None else tagger.labels, lost_samples=np.asarray(lost, np.int64))
