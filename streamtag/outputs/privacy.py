"""A privacy gate: windows where privacy labels (e.g. Speech) pass their thresholds are private; their audio is
never written (silenced in clips) and their embeddings are not stored."""
from __future__ import annotations

import dataclasses
import threading
from collections import deque
from typing import Callable, Iterable, Mapping

import numpy as np

from ..errors import ConfigError, LabelsError
from ..models.labels import Labels
from ..pipeline.result import WindowResult

DEFAULT_PRIVACY_THRESHOLD = 0.1  # low on purpose: a leak costs more than a silenced second
MAX_SPANS = 100_000  # private spans remembered (merged; older ones are forgotten)


class PrivacyGate:
    """Decides which windows are private and remembers their time spans (seconds, widened by `margin_s`).

    labels: the run's labels (with a custom head in append mode, the AudioSet names stay available);
    privacy: label name -> threshold (or names, at DEFAULT_PRIVACY_THRESHOLD).
    """

    def __init__(self, labels: Labels, privacy: Mapping[str, float] | Iterable[str],
                 margin_s: float = 0.25) -> None:
        items = privacy.items() if isinstance(privacy, Mapping) else ((n, DEFAULT_PRIVACY_THRESHOLD) for n in privacy)
        pairs = []
        for name, threshold in items:
            try:
                index = labels.index(name)
            except LabelsError as e:  # say which option it came from
                raise ConfigError(f"privacy label: {e} (a custom head in 'replace' mode has no AudioSet labels; "
                                  "use head mode 'append')") from None
            if not 0.0 <= float(threshold) <= 1.0:
                raise ConfigError(f"privacy threshold for {name!r} must be within 0..1, got {threshold}")
            pairs.append((index, float(threshold)))
        if not pairs:
            raise ConfigError("the privacy gate needs at least one label")
        if not 0.0 <= margin_s < 60.0:
            raise ConfigError(f"privacy margin must be within 0..60 s, got {margin_s}")
        self.names = tuple(labels.names[i] for i, _ in pairs)
        self._idx = np.asarray([i for i, _ in pairs], dtype=int)
        self._thr = np.asarray([t for _, t in pairs], dtype=np.float32)
        self.margin_s = margin_s
        self._spans: deque[list[float]] = deque(maxlen=MAX_SPANS)  # merged [start, end) seconds, in order
        self._lock = threading.Lock()
        self.private_windows = 0

    def is_private(self, r: WindowResult) -> bool:
        """Whether window `r` is private (a privacy label at or above its threshold); stateless."""
        return r.scores is not None and bool(np.any(r.scores[self._idx] >= self._thr))

    def update(self, r: WindowResult) -> bool:
        """Judge window `r` and remember its span when private; returns whether it is."""
        private = self.is_private(r)
        if private:
            self.private_windows += 1
            a, b = r.start_s - self.margin_s, r.end_s + self.margin_s
            with self._lock:
                if self._spans and a <= self._spans[-1][1]:
                    self._spans[-1][1] = max(self._spans[-1][1], b)
                else:
                    self._spans.append([a, b])
        return private

    def spans(self, start_s: float, end_s: float) -> list[tuple[float, float]]:
        """The private spans overlapping [start_s, end_s), clipped to it."""
        with self._lock:
            return [(max(a, start_s), min(b, end_s)) for a, b in self._spans if a < end_s and b > start_s]

    def overlaps(self, start_s: float, end_s: float) -> bool:
        return bool(self.spans(start_s, end_s))

    def silence(self, samples: np.ndarray, start_s: float, rate: int) -> tuple[np.ndarray, bool]:
        """`samples` (starting at `start_s`) with every private part set to 0; and whether any was."""
        out = samples
        spans = self.spans(start_s, start_s + len(samples) / rate)
        if spans:
            out = samples.copy()
            for a, b in spans:
                out[max(0, int(np.floor((a - start_s) * rate))):max(0, int(np.ceil((b - start_s) * rate)))] = 0.0
        return out, bool(spans)

    def guard(self, sink: Callable[[WindowResult], object]) -> "PrivateGuard":
        """A subscriber passing windows to `sink` with private windows' embeddings (and frames) removed (NaN)."""
        return PrivateGuard(self, sink)


class PrivateGuard:
    """Wraps a sink that stores embeddings: a private window reaches it with NaN embeddings and no frames."""

    def __init__(self, gate: PrivacyGate, sink: Callable[[WindowResult], object]) -> None:
        self.gate, self.sink = gate, sink

    def __call__(self, r: WindowResult) -> object:
        if self.gate.is_private(r):
            r = dataclasses.replace(r, embedding=np.full_like(r.embedding, np.nan), frames=None, frame_times=None)
        return self.sink(r)

    def close(self) -> None:
        close = getattr(self.sink, "close", None)
        if close is not None:
            close()
