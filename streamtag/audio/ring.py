"""A float32 ring buffer addressed by absolute sample index, with back-pressure and overwrite counting."""
from __future__ import annotations

import threading
from collections import deque

import numpy as np


class RingClosed(Exception):
    """Raised by a blocking write when the ring was closed or aborted while waiting."""


class RingBuffer:
    """Fixed-capacity sample store where sample i of the stream lives at slot i % capacity.

    Writers either wait for space (file sources: nothing is ever dropped) or overwrite the
    oldest samples (live sources), in which case samples overwritten before the reader
    released them are counted in `overwritten`. Readers address samples by absolute index.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ring capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self._written = 0  # absolute index one past the newest sample
        self._released = 0  # samples before this index may be overwritten
        self._overwritten = 0  # unreleased samples lost to overwrites
        self._gaps: deque[tuple[int, int]] = deque(maxlen=4096)  # [start, end) written as lost audio
        self._gap_samples = 0
        self._closed = False  # end of stream: no more writes
        self._aborted = False  # stop requested: waiters give up
        self._cond = threading.Condition()

    # -- state -------------------------------------------------------------------------
    @property
    def written(self) -> int:
        """Total samples written since the start (absolute index of the next sample)."""
        return self._written

    @property
    def oldest(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self._written - self.capacity)

    @property
    def released(self) -> int:
        return self._released

    @property
    def overwritten(self) -> int:
        """Samples overwritten before the reader released them (live loss)."""
        return self._overwritten

    @property
    def gap_samples(self) -> int:
        """Samples the source reported lost before they reached the ring (written as zeros)."""
        return self._gap_samples

    @property
    def closed(self) -> bool:
        return self._closed

    # -- writer side -------------------------------------------------------------------
    def write(self, samples: np.ndarray, block: bool = True) -> int:
        """Append samples; wait for space when `block`, else overwrite. Returns samples lost now."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        lost = 0
        pos = 0
        with self._cond:
            if self._closed:
                raise ValueError("cannot write to a closed ring buffer")
            while pos < len(x):
                if block:
                    while not self._aborted and self._written - self._released >= self.capacity:
                        self._cond.wait()
                    if self._aborted:
                        raise RingClosed("ring buffer aborted while waiting for space")
                    room = self.capacity - max(0, self._written - self._released)
                    n = min(room, len(x) - pos)
                else:
                    n = min(self.capacity, len(x) - pos)
                    lost += self._count_loss(self._written + n)
                self._store(x[pos:pos + n])
                pos += n
                self._cond.notify_all()
        return lost

    def write_gap(self, n: int, block: bool = True) -> int:
        """Append n zeros standing for audio the source lost (e.g. a device overflow), and remember them."""
        with self._cond:
            start = self._written
        lost = self.write(np.zeros(int(n), np.float32), block=block)
        with self._cond:
            self._gaps.append((start, start + int(n)))
            self._gap_samples += int(n)
        return lost

    def gaps_in(self, start: int, n: int) -> int:
        """How many samples of [start, start+n) were written as lost audio."""
        with self._cond:
            return sum(max(0, min(b, start + n) - max(a, start)) for a, b in self._gaps)

    def _count_loss(self, new_written: int) -> int:
        # Samples in [max(released, oldest_now), new_oldest) are overwritten unread.
        new_oldest = new_written - self.capacity
        first_unread = max(self._released, self.oldest)
        lost = max(0, new_oldest - first_unread)
        if lost:
            self._overwritten += lost
            self._released = max(self._released, new_oldest)
        return lost

    def _store(self, x: np.ndarray) -> None:
        start = self._written % self.capacity
        first = min(len(x), self.capacity - start)
        self._data[start:start + first] = x[:first]
        self._data[:len(x) - first] = x[first:]
        self._written += len(x)

    def close(self) -> None:
        """Mark the end of the stream; readers waiting for more samples wake up."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """Wake every waiter for good (used on stop); blocking writes raise RingClosed."""
        with self._cond:
            self._aborted = True
            self._closed = True
            self._cond.notify_all()

    # -- reader side -------------------------------------------------------------------
    def wait_for(self, index: int, timeout: float | None = None) -> bool:
        """Wait until sample `index - 1` has arrived or the stream ended; True if it arrived."""
        with self._cond:
            self._cond.wait_for(lambda: self._written >= index or self._closed, timeout)
            return self._written >= index

    def read(self, start: int, n: int) -> tuple[np.ndarray, int]:
        """Copy samples [start, start+n); also return how many were overwritten (returned as 0)."""
        if start < 0 or n < 0:
            raise ValueError(f"bad read range start={start} n={n}")
        with self._cond:
            if start + n > self._written:
                raise ValueError(f"read past the written end: [{start}, {start + n}) > {self._written}")
            out = np.zeros(n, dtype=np.float32)
            lo = max(start, self.oldest)
            lost = lo - start if lo > start else 0
            if lo < start + n:
                a = lo % self.capacity
                m = start + n - lo
                first = min(m, self.capacity - a)
                out[lo - start:lo - start + first] = self._data[a:a + first]
                out[lo - start + first:] = self._data[:m - first]
            return out, min(lost, n)

    def release(self, upto: int) -> None:
        """Allow samples before absolute index `upto` to be overwritten."""
        with self._cond:
            if upto > self._released:
                self._released = upto
                self._cond.notify_all()
