"""Sound levels of windows: dBFS RMS and A-weighted dBFS (IEC 61672 A curve, 0 dB at 1 kHz)."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

SILENCE_DB = -120.0  # the level reported for digital silence (and the floor of every level)


def db(power: np.ndarray | float) -> np.ndarray:
    """Mean-square power as dB (10 log10), floored at SILENCE_DB."""
    p = np.maximum(np.asarray(power, np.float64), 10.0 ** (SILENCE_DB / 10))
    return 10.0 * np.log10(p)


def a_weight_gain(freqs: np.ndarray) -> np.ndarray:
    """The A-weighting power gain |A(f)|^2 at `freqs` (Hz), normalised to 1 at 1 kHz."""
    f2 = np.asarray(freqs, np.float64) ** 2
    c1, c2, c3, c4 = 20.598997 ** 2, 107.65265 ** 2, 737.86223 ** 2, 12194.217 ** 2
    ra = (c4 * f2 ** 2) / ((f2 + c1) * np.sqrt((f2 + c2) * (f2 + c3)) * (f2 + c4))
    f1k = 1000.0 ** 2
    ra1k = (c4 * f1k ** 2) / ((f1k + c1) * np.sqrt((f1k + c2) * (f1k + c3)) * (f1k + c4))
    return (ra / ra1k) ** 2


@lru_cache(maxsize=8)
def _a_gains(n: int, rate: int) -> np.ndarray:
    """Per-bin power weights for an n-point rfft, with the one-sided spectrum's doubling and 1/n^2 scaling."""
    g = a_weight_gain(np.fft.rfftfreq(n, 1.0 / rate))
    g *= 2.0 / (n * n)
    g[0] /= 2.0
    if n % 2 == 0:
        g[-1] /= 2.0
    return g


def window_levels(span: np.ndarray, starts: np.ndarray, window: int, rate: int,
                  valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(dBFS RMS, A-weighted dBFS) of each window span[s:s+window] for s in `starts` (of its first `valid`
    samples when given). 0 dB is a full-scale square wave's RMS (a full-scale sine is -3.01 dB)."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.full(len(starts), window, np.int64) if valid is None else np.clip(np.asarray(valid), 1, window)
    x = np.asarray(span, np.float64)
    return db(_mean_square(x, starts, lengths)), db(_a_power(x, starts, lengths, rate))


def _mean_square(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    sq = np.concatenate([[0.0], np.cumsum(x * x)])
    return (sq[starts + lengths] - sq[starts]) / lengths


def _a_power(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray, rate: int) -> np.ndarray:
    """A-weighted mean-square power of each x[s:s+n], through its own spectrum."""
    weighted = np.empty(len(starts))
    for j, (s, n) in enumerate(zip(starts, lengths)):
        spec = np.fft.rfft(x[s:s + n])
        weighted[j] = float(np.sum((spec.real ** 2 + spec.imag ** 2) * _a_gains(int(n), rate)))
    return weighted


def mean_level(levels_db: np.ndarray | list[float]) -> float:
    """The level of several equal-length windows together: their mean power, in dB."""
    levels = np.asarray(levels_db, np.float64)
    if levels.size == 0:
        return SILENCE_DB
    return float(db(np.mean(10.0 ** (levels / 10.0))))


MIN_BLOCK_S = 0.25  # shortest block whose spectrum weights a window's A-level (4 Hz bins; 0.1 s blocks were 0.7 dB off)


class StreamLevels:
    """(dBFS RMS, A-weighted dBFS) of a stream's overlapping windows, each sample analysed once.

    A full window's mean-square and A-weighted power are the means over its blocks (the gcd of window and hop, at
    least MIN_BLOCK_S) of each block's mean square and A-weighted spectral power; blocks are kept by absolute
    index, so the next batch reuses those it overlaps. Windows cut short by the stream's end, and windows whose
    blocks would be shorter, are measured whole (`window_levels`). The RMS level is the same either way.
    """

    def __init__(self, window: int, hop: int, rate: int) -> None:
        self.window, self.rate = window, rate
        block = math.gcd(window, hop)
        self.block = block if block >= MIN_BLOCK_S * rate else 0
        self._blocks: dict[int, tuple[float, float]] = {}  # absolute block index -> (mean square, A-weighted)

    def clear(self) -> None:
        """Forget the blocks seen (the samples before the next span were lost or overwritten)."""
        self._blocks.clear()

    def levels(self, span: np.ndarray, span_start: int, starts: np.ndarray,
               valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Levels of the windows span[s:s+window] for s in `starts`, `valid` samples of each real; the span begins
        at absolute sample `span_start` of the stream."""
        starts = np.asarray(starts, np.int64)
        valid = np.clip(np.asarray(valid, np.int64), 1, self.window)
        aligned = (span_start + starts) % self.block == 0 if self.block else np.zeros(len(starts), bool)
        full = aligned & (valid == self.window)
        power, a_power = np.empty(len(starts)), np.empty(len(starts))
        if not full.all():
            x = np.asarray(span, np.float64)
            power[~full] = _mean_square(x, starts[~full], valid[~full])
            a_power[~full] = _a_power(x, starts[~full], valid[~full], self.rate)
        if full.any():
            b, per = self.block, self.window // self.block
            firsts = (span_start + starts[full]) // b
            lo, hi = int(firsts.min()), int(firsts.max()) + per  # the blocks of the batch's (consecutive) windows
            for stale in [k for k in self._blocks if k < lo]:
                del self._blocks[stale]
            missing = [k for k in range(lo, hi) if k not in self._blocks]
            if missing:
                offsets = np.asarray(missing, np.int64) * b - span_start
                blocks = np.stack([span[o:o + b] for o in offsets.tolist()]).astype(np.float64)
                spec = np.fft.rfft(blocks, axis=1)
                # einsum, not BLAS: a product this size would wake OpenBLAS's threads beside the network's
                a_blocks = np.einsum("ij,j->i", spec.real ** 2 + spec.imag ** 2, _a_gains(b, self.rate))
                self._blocks.update(zip(missing, zip(np.einsum("ij,ij->i", blocks, blocks) / b, a_blocks)))
            both = np.array([[self._blocks[k] for k in range(f, f + per)] for f in firsts.tolist()]).mean(axis=1)
            power[full], a_power[full] = both[:, 0], both[:, 1]
        return db(power), db(a_power)
