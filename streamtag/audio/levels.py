"""Sound levels of windows: dBFS RMS and A-weighted dBFS (IEC 61672 A curve, 0 dB at 1 kHz)."""
from __future__ import annotations

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
    sq = np.concatenate([[0.0], np.cumsum(x * x)])
    power = (sq[starts + lengths] - sq[starts]) / lengths
    weighted = np.empty(len(starts))
    for j, (s, n) in enumerate(zip(starts, lengths)):
        spec = np.fft.rfft(x[s:s + n])
        weighted[j] = float(np.sum((spec.real ** 2 + spec.imag ** 2) * _a_gains(int(n), rate)))
    return db(power), db(weighted)


def mean_level(levels_db: np.ndarray | list[float]) -> float:
    """The level of several equal-length windows together: their mean power, in dB."""
    levels = np.asarray(levels_db, np.float64)
    if levels.size == 0:
        return SILENCE_DB
    return float(db(np.mean(10.0 ** (levels / 10.0))))
