"""Window levels without a second decode: a source wrapper that keeps the energy of short bins as audio
passes to the pipeline, so each window's RMS level (dBFS) can be read after its result."""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from ..audio.sources import AudioSource, Gap

BIN_S = 0.01  # energy bins of 10 ms: a window's level is exact to one bin at its edges
SILENT_DB = -120.0  # the level of digital silence


class LevelMeter:
    """An `AudioSource` that passes `inner`'s blocks on and records their energy per bin.

    `level_db(start_sample, end_sample)` gives a window's RMS level; `forget(before_sample)` drops the
    bins no later window needs, so memory stays flat on long recordings.
    """

    def __init__(self, inner: AudioSource) -> None:
        self.inner = inner
        self.live = inner.live
        self.start_utc = inner.start_utc
        self._bin = 1
        self._sums: list[float] = []  # energy of bin (first + i)
        self._first = 0  # bin number of _sums[0]
        self._partial = 0.0  # energy of the bin being filled
        self._filled = 0  # samples in it

    @property
    def overflows(self) -> int:
        return self.inner.overflows

    @property
    def nonfinite(self) -> int:
        return self.inner.nonfinite

    def length(self, rate: int) -> int | None:
        return self.inner.length(rate)

    def close(self) -> None:
        self.inner.close()

    def blocks(self, rate: int) -> Iterator[np.ndarray | Gap]:
        self._bin = max(1, int(round(rate * BIN_S)))
        for block in self.inner.blocks(rate):
            if isinstance(block, Gap):
                self._add(np.zeros(block.samples, np.float32))
            else:
                self._add(block)
            yield block

    def _add(self, x: np.ndarray) -> None:
        sq = np.square(x, dtype=np.float64)
        i = 0
        if self._filled:  # finish the open bin
            take = min(self._bin - self._filled, len(sq))
            self._partial += float(sq[:take].sum())
            self._filled += take
            i = take
            if self._filled == self._bin:
                self._sums.append(self._partial)
                self._partial, self._filled = 0.0, 0
        whole = (len(sq) - i) // self._bin
        if whole:
            self._sums.extend(sq[i:i + whole * self._bin].reshape(whole, self._bin).sum(axis=1).tolist())
            i += whole * self._bin
        if i < len(sq):
            self._partial += float(sq[i:].sum())
            self._filled += len(sq) - i

    def level_db(self, start_sample: int, end_sample: int) -> float:
        """RMS level in dBFS of samples [start, end) (bins past the audio's end count as silence)."""
        a = max(start_sample // self._bin - self._first, 0)
        b = max(-(-end_sample // self._bin) - self._first, a + 1)
        sums = self._sums[a:b]
        if b > len(self._sums) and self._filled:  # the open bin at the very end
            sums = sums + [self._partial]
        energy = sum(sums) / max((b - a) * self._bin, 1)
        return round(10 * math.log10(energy), 2) if energy > 1e-12 else SILENT_DB

    def forget(self, before_sample: int) -> None:
        """Drop the bins wholly before `before_sample` (no later window starts there)."""
        drop = before_sample // self._bin - self._first
        if drop > 0:
            del self._sums[:drop]
            self._first += drop


__all__ = ["LevelMeter", "SILENT_DB"]
