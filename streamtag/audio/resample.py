"""Streaming mono resampling with soxr (quality HQ, librosa's default), block-size invariant."""
from __future__ import annotations

import math

import numpy as np
import soxr


def expected_length(n_in: int, in_rate: int, out_rate: int) -> int:
    """Output length librosa gives for n_in samples: ceil(n_in * out/in) in float, as it computes it."""
    return int(math.ceil(n_in * (float(out_rate) / in_rate)))


class StreamResampler:
    """Resamples a mono float32 stream block by block; the output equals one-shot `soxr.resample`.

    The total output is fixed to `expected_length(total input)` as librosa does, so a file
    tagged through the stream gets exactly the samples the reference pipeline sees.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self._stream = (
            None if self.in_rate == self.out_rate
            else soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=quality)
        )
        self.n_in = 0
        self.n_out = 0
        self._done = False

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed one mono block; returns the output samples ready so far (all of them when `last`)."""
        if self._done:
            raise ValueError("resampler already flushed")
        x = np.ascontiguousarray(block, dtype=np.float32).reshape(-1)
        self.n_in += len(x)
        if self._stream is None:
            y = x
        else:
            y = self._stream.resample_chunk(x, last=last)
        if last:
            self._done = True
            target = expected_length(self.n_in, self.in_rate, self.out_rate)
            room = target - self.n_out
            if len(y) > room:
                y = y[:max(room, 0)]
            elif len(y) < room:
                y = np.concatenate([y, np.zeros(room - len(y), dtype=np.float32)])
        self.n_out += len(y)
        return y
