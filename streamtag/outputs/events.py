"""From window scores to events: a small per-label state machine with hysteresis, usable live and offline."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..models.labels import Labels
from ..pipeline.result import WindowResult


def window_slice(start_s: float, end_s: float, hop_s: float, first: bool) -> tuple[float, float]:
    """The time a window stands for: its central hop-wide slice, the first window's from its start.

    Consecutive slices tile the timeline; the last one is extended to the audio's end by the caller.
    """
    mid, half = (start_s + end_s) / 2, min(hop_s, end_s - start_s) / 2
    return (start_s if first else mid - half), mid + half


@dataclass(frozen=True)
class Event:
    """One detected sound: a label active from onset_s to offset_s (absolute seconds)."""

    label: str
    mid: str
    onset_s: float
    offset_s: float
    peak: float  # highest (smoothed) score while active
    mean: float  # mean (smoothed) score over its windows
    first_window: int
    last_window: int

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s

    @property
    def windows(self) -> range:
        return range(self.first_window, self.last_window + 1)


@dataclass
class _Open:
    onset_s: float
    offset_s: float
    first: int
    last: int
    peak: float
    total: float
    count: int
    below_since: float | None = None  # core end of the last window above `off`, once it dropped


MAX_MEDIAN = 999  # windows: the smoothing buffer holds this many score vectors


@dataclass(frozen=True)
class EventSettings:
    """Thresholds and timing of `EventDetector` (defaults suit EfficientAT scores at 1 s / 0.5 s)."""

    on: float = 0.3  # a label opens when its score reaches this
    off: float = 0.15  # and stays open while its score stays at or above this (hysteresis)
    min_duration_s: float = 0.5  # shorter events are dropped
    max_gap_s: float = 1.0  # an event that reopens within this gap continues
    median: int = 3  # median smoothing over this many windows (odd; 1 = none)
    labels: tuple[int, ...] | None = None  # label indices to track (None = all)
    per_class: tuple[tuple[int, float, float], ...] = ()  # (label index, on, off): labels with their own

    def __post_init__(self) -> None:
        for on, off in [(self.on, self.off)] + [(on, off) for _, on, off in self.per_class]:
            if not 0 <= off <= on <= 1:
                raise ConfigError(f"event thresholds need 0 <= off <= on <= 1, got on={on} off={off}")
        if self.median < 1 or self.median % 2 == 0 or self.median > MAX_MEDIAN:
            raise ConfigError(f"median smoothing must be an odd number of windows from 1 to {MAX_MEDIAN}, "
                              f"got {self.median}")
        if not (0 <= self.min_duration_s < math.inf and 0 <= self.max_gap_s < math.inf):
            raise ConfigError(f"the shortest event and the largest gap must be finite and >= 0 s, got "
                              f"{self.min_duration_s} and {self.max_gap_s}")


class EventDetector:
    """Feed results in order with `update`; it returns the events that closed. `flush` ends the stream.

    Each window stands for its central hop-wide slice ("core"), so consecutive windows tile the
    timeline and overlapping windows never report the same sound twice; the first window's slice
    starts at its start (0) and the last one's ends at the audio's end (`flush(end_s)`) or its own,
    whichever is earlier, so the tiles cover the whole recording. With median smoothing of n
    windows, decisions lag n//2 windows behind the input.
    """

    def __init__(self, labels: Labels, settings: EventSettings | None = None,
                 on_open: Callable[[str, float], None] | None = None, hop_s: float | None = None,
                 on_drop: Callable[[Event], None] | None = None) -> None:
        self.names, self.mids = labels.names, labels.mids
        self.hop_s = hop_s  # None: learnt from the windows' start times
        self.settings = settings or EventSettings()
        self.on_open = on_open
        self.on_drop = on_drop  # an event that opened (on_open) but closed shorter than min_duration_s
        idx = self.settings.labels
        self._idx = np.arange(len(labels.names)) if idx is None else np.asarray(idx, dtype=int)
        own = {i: (on, off) for i, on, off in self.settings.per_class}
        s = self.settings
        self._on = [own.get(int(i), (s.on, s.off))[0] for i in self._idx]
        self._off = [own.get(int(i), (s.on, s.off))[1] for i in self._idx]
        self.reset()

    def reset(self) -> None:
        """Forget all state (start of a new stream)."""
        self._buffer: deque[tuple[WindowResult, np.ndarray]] = deque(maxlen=self.settings.median)
        self._open: dict[int, _Open] = {}
        self._seen = 0  # windows received
        self._decided = 0  # windows decided (their median was complete)
        self._last: WindowResult | None = None  # the latest window received

    def update(self, r: WindowResult) -> list[Event]:
        """Add the next window; returns the events that closed."""
        if r.scores is None:
            return []
        self._buffer.append((r, r.scores[self._idx].astype(np.float32)))
        self._seen += 1
        self._last = r
        closed: list[Event] = []
        while self._decided + self.settings.median // 2 < self._seen:
            closed += self._decide(self._decided)
            self._decided += 1
        return closed

    def flush(self, end_s: float | None = None) -> list[Event]:
        """End of stream (audio ending at `end_s`, if known): decide the windows still waiting for their
        median, extend what is open in the last window to the end, close every event."""
        closed: list[Event] = []
        while self._decided < self._seen:
            closed += self._decide(self._decided)
            self._decided += 1
        if self._last is not None:
            end = self._last.end_s if end_s is None else min(self._last.end_s, end_s)
            for ev in self._open.values():
                if ev.last == self._last.index and ev.below_since is None:
                    ev.offset_s = max(ev.offset_s, end)
                if end_s is not None:
                    ev.offset_s = min(ev.offset_s, end_s)
        for label in list(self._open):
            closed += self._close(label)
        self.reset()
        return closed

    @staticmethod
    def _core(r: WindowResult, hop: float) -> tuple[float, float]:
        """The slice of the timeline window `r` stands for (`window_slice`)."""
        return window_slice(r.start_s, r.end_s, hop, r.index == 0)

    def _decide(self, position: int) -> list[Event]:
        s, half = self.settings, self.settings.median // 2
        first = self._seen - len(self._buffer)  # stream position of buffer[0]
        # neighbours beyond the stream's ends repeat the edge window ("nearest" padding)
        around = [min(max(q, 0), self._seen - 1) - first for q in range(position - half, position + half + 1)]
        scores = np.median(np.stack([self._buffer[k][1] for k in around]), axis=0)
        r = self._buffer[position - first][0]
        core_start, core_end = self._core(r, self._hop(r))
        closed: list[Event] = []
        for j, label in enumerate(self._idx):
            score, on, off = float(scores[j]), self._on[j], self._off[j]
            ev = self._open.get(label)
            if ev is not None and ev.below_since is not None and core_start - ev.below_since > s.max_gap_s:
                closed += self._close(label)
                ev = None
            if ev is None:
                if score >= on:
                    self._open[label] = _Open(core_start, core_end, r.index, r.index, score, score, 1)
                    if self.on_open is not None:
                        self.on_open(self.names[label], core_start)
                continue
            if score >= (on if ev.below_since is not None else off):
                ev.offset_s, ev.last, ev.below_since = core_end, r.index, None
                ev.peak = max(ev.peak, score)
                ev.total += score
                ev.count += 1
            elif ev.below_since is None:
                ev.below_since = ev.offset_s
        return closed

    def _hop(self, r: WindowResult) -> float:
        if self.hop_s is None and r.index > 0:
            self.hop_s = r.start_s / r.index  # window k starts at k * hop
        return self.hop_s if self.hop_s is not None else r.end_s - r.start_s

    def _close(self, label: int) -> list[Event]:
        ev = self._open.pop(label)
        event = Event(self.names[label], self.mids[label], round(ev.onset_s, 6), round(ev.offset_s, 6),
                      ev.peak, ev.total / ev.count, ev.first, ev.last)
        if ev.offset_s - ev.onset_s < self.settings.min_duration_s:
            if self.on_drop is not None:
                self.on_drop(event)
            return []
        return [event]


@dataclass
class EventSubscriber:
    """A subscriber that runs an `EventDetector` and hands each closed event to `callback`."""

    detector: EventDetector
    callback: Callable[[Event], object]
    events: list[Event] = field(default_factory=list)

    def __call__(self, r: WindowResult) -> None:
        for ev in self.detector.update(r):
            self.events.append(ev)
            self.callback(ev)

    def close(self, end_s: float | None = None) -> None:
        """End of stream: the last events, up to `end_s` (the audio's end) when known."""
        for ev in self.detector.flush(end_s):
            self.events.append(ev)
            self.callback(ev)
