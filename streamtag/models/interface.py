"""The one model interface the pipeline runs, torch or not (`RunnableModel`), and the facts every model takes from
its registry entry (`SpecFacts`), written once for the torch models and the torch-free export alike."""
from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np

from .mel import FrameCache
from .pending import PendingNetwork
from .spec import ModelSpec
from .weights import ResolvedFile


class RunnableModel(Protocol):
    """What a model offers the pipeline: windows at `sample_rate` -> a pending network call -> outputs."""

    spec: ModelSpec
    weights: ResolvedFile | None  # where its weights came from (None: random init or a composite)
    needs_torch: ClassVar[bool]  # False: runs on numpy arrays without torch (the cached export)

    @property
    def sample_rate(self) -> int: ...

    @property
    def min_samples(self) -> int: ...

    @property
    def has_scores(self) -> bool: ...

    @property
    def has_frames(self) -> bool: ...

    @property
    def exportable(self) -> bool: ...

    def frame_times(self, n_samples: int) -> np.ndarray | None:
        """Start (s, from the window's first sample) of each frame embedding of an n_samples window, or None."""
        ...

    def prepare_windows(self, span: Any, count: int, step: int, window: int, start: int | None = None,
                        cache: FrameCache | None = None) -> PendingNetwork:
        """The windows span[k*step : k*step + window], k < count, up to the network (the front-end run)."""
        ...


class SpecFacts:
    """The facts a model takes from its registry entry (a mixin of every model class)."""

    spec: ModelSpec

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    @property
    def min_samples(self) -> int:
        """Shortest window or hop this model accepts."""
        return self.spec.min_samples


__all__ = ["RunnableModel", "SpecFacts"]
