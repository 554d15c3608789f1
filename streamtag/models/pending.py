"""A batch whose front-end has run and whose network has not: the pipeline runs the two in different threads."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class PendingNetwork:
    """The rest of a model call: `run()` is `network(features, *extra)`, callable from any thread."""

    network: Callable[..., Any]
    features: Any
    extra: tuple = ()

    def run(self) -> Any:
        """The model's outputs for this batch (what `forward_windows` returns)."""
        return self.network(self.features, *self.extra)
