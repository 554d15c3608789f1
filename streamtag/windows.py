"""The window rule: window k holds samples [k*H, k*H + W) at the model's rate (see ARCHITECTURE.md)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError

MAX_SECONDS = 1e7  # window and hop: sample positions stay far inside int64 at any rate


@dataclass(frozen=True)
class WindowSpec:
    """Window and hop in samples at `rate`, converted once from seconds."""

    window: int  # W, samples
    hop: int  # H, samples
    rate: int

    @classmethod
    def from_seconds(cls, window_s: float, hop_s: float, rate: int, min_samples: int = 1) -> "WindowSpec":
        """Validate and convert; both must be at least `min_samples` (one STFT hop) long."""
        for name, value in (("window", window_s), ("hop", hop_s)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number of seconds, got {value!r}")
            if value <= 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {value}")
            if value > MAX_SECONDS:
                raise ConfigError(f"{name} must be at most {MAX_SECONDS:g} s (115 days), got {value:g}")
        w, h = round(window_s * rate), round(hop_s * rate)
        if w < min_samples:
            raise ConfigError(
                f"window {window_s} s is shorter than one model frame ({min_samples / rate:g} s at {rate} Hz)")
        if h < min_samples:
            raise ConfigError(
                f"hop {hop_s} s is shorter than one model frame ({min_samples / rate:g} s at {rate} Hz)")
        return cls(int(w), int(h), int(rate))

    @property
    def window_s(self) -> float:
        return self.window / self.rate

    @property
    def hop_s(self) -> float:
        return self.hop / self.rate

    def start(self, k: int) -> int:
        """First sample of window k."""
        return k * self.hop

    def end(self, k: int) -> int:
        """One past the last sample of window k."""
        return k * self.hop + self.window

    def times(self, k: int) -> tuple[float, float]:
        """Nominal (start_s, end_s) of window k; the last window may end after the audio."""
        return self.start(k) / self.rate, self.end(k) / self.rate

    def due(self, available: int) -> int:
        """Number of windows complete once `available` samples have arrived (streaming rule)."""
        if available < self.window:
            return 0
        return (available - self.window) // self.hop + 1

    def total(self, n: int) -> int:
        """Windows of a finished stream of n samples: 0 if n == 0, 1 if n <= W, else ceil((n-W)/H)+1.

        With hop > window that count can include a window starting at or after the end (pure
        padding), so it is capped at ceil(n/H): only windows that start inside the audio.
        """
        if n <= 0:
            return 0
        if n <= self.window:
            return 1
        return min(-(-(n - self.window) // self.hop) + 1, -(-n // self.hop))


class WindowScheduler:
    """Tracks which windows of a stream are due and hands them out in order, in batches.

    `grid=True` (files, pushed arrays) forms batches of windows [j*B, (j+1)*B) only, so the
    batches, and therefore the results, do not depend on how the audio arrived. `grid=False`
    (live) hands out whatever is due, up to B windows, for the lowest latency.
    """

    def __init__(self, spec: WindowSpec, batch_size: int, grid: bool = True) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        self.spec = spec
        self.batch_size = int(batch_size)
        self.grid = grid
        self.next_window = 0

    def needed(self) -> int:
        """Samples that must have arrived before the next batch is due (while streaming)."""
        count = self.batch_size if self.grid else 1
        return self.spec.end(self.next_window + count - 1)

    def take(self, available: int, ended: bool, cut: bool = False) -> range:
        """Windows to process now, given `available` samples and whether the stream ended; `cut`: it stopped
        short (its source failed), so the windows complete so far, none zero-padded, up to a batch."""
        k = self.next_window
        last = self.spec.total(available) if ended else self.spec.due(available)
        if ended or cut or not self.grid:
            stop = min(last, k + self.batch_size)
        else:
            stop = k + self.batch_size if last >= k + self.batch_size else k
        stop = max(stop, k)
        self.next_window = stop
        return range(k, stop)

    def release_point(self) -> int:
        """Samples before this index are no longer needed by any future window."""
        return self.spec.start(self.next_window)
