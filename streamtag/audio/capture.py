"""The hand-over between a capture thread (a device callback, a network reader) and the pipeline's source thread."""
from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Iterator

import numpy as np

from .resample import StreamResampler
from .sources import Gap, downmix, replace_nonfinite, tell_native


class CaptureBuffer:
    """Captured [frames, channels] blocks, bounded by `max_frames`: `put` never waits, and when the buffer is full
    the oldest audio becomes lost frames (an int item), so time stays true and the loss is counted."""

    def __init__(self, max_frames: int) -> None:
        self.max_frames = int(max_frames)
        self.dropped_frames = 0  # frames lost to a full buffer or reported lost with `lose`
        self._items: deque = deque()  # np.ndarray blocks, or int = lost frames
        self._queued = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()

    def put(self, block: np.ndarray) -> None:
        """Add a captured block (from the capture thread; copies nothing, never waits)."""
        frames = len(block)
        with self._lock:
            while self._queued + frames > self.max_frames:  # full: the oldest audio becomes a gap
                i = next((j for j, it in enumerate(self._items) if not isinstance(it, int)), None)
                if i is None:
                    break
                old = self._items[i]
                self._items[i] = len(old)
                self._queued -= len(old)
                self.dropped_frames += len(old)
            self._items.append(block)
            self._queued += frames
        self._ready.set()

    def lose(self, frames: int) -> None:
        """Record `frames` frames that never arrived (a device overflow, a dropped connection)."""
        if frames > 0:
            with self._lock:
                self._items.append(int(frames))
                self.dropped_frames += int(frames)
            self._ready.set()

    def wait(self, timeout: float) -> None:
        """Wait until something was put (or `wake`), at most `timeout` seconds."""
        self._ready.wait(timeout)
        self._ready.clear()

    def wake(self) -> None:
        self._ready.set()

    def take(self) -> list:
        """Everything captured since the last call, oldest first."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._queued = 0
        return items


def captured_blocks(items: list, resampler: StreamResampler, native_rate: int, rate: int,
                    source) -> Iterator[np.ndarray | Gap]:
    """Captured items -> mono blocks at `rate` (NaN/Inf counted on `source.nonfinite`); lost frames -> a Gap."""
    for item in items:
        if isinstance(item, int):
            tell_native(source, None, item)
            yield Gap(int(round(item * rate / native_rate)))
        else:
            mono, bad = replace_nonfinite(downmix(item))
            source.nonfinite += bad
            tell_native(source, mono, len(mono))
            out = resampler.process(mono)
            if len(out):
                yield out


def capture_start(frames: int, rate: int) -> datetime:
    """The UTC time the first of `frames` frames just captured at `rate` was recorded (the capture clock)."""
    return datetime.now(timezone.utc) - timedelta(seconds=frames / rate)
