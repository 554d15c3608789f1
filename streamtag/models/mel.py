"""EfficientAT's log-mel settings and its front-end in numpy (no torch): the OpenVINO export's input, computed alone.

`EfficientATMelSettings` is the one place the mel constants live; the torch front-end
(`frontends.EfficientATMel`) and `NumpyEfficientATMel` here are both built from it and agree
within float rounding (<= 1e-6 on real audio).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources
from typing import Callable, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


FFT_BLOCK = 128  # frames per FFT block of the numpy front-end
MEL_GROUP = 8  # adjacent mel bands per dense product of the numpy front-end


def frame_count(n_samples: int, hop_length: int, frame_length: int | None = None) -> int:
    """STFT frames of n_samples: centred (frame_length None) 1 + n // hop; else frames wholly inside (snip_edges)."""
    if frame_length is None:
        return 1 + n_samples // hop_length
    return 0 if n_samples < frame_length else 1 + (n_samples - frame_length) // hop_length


def kaldi_mel(freq: float) -> float:
    """Kaldi's mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * math.log(1.0 + freq / 700.0)


@dataclass(frozen=True)
class EfficientATMelSettings:
    """EfficientAT's eval-mode `AugmentMelSTFT` settings (fmax None: sr/2 - fmax_aug_range/2, as the reference)."""

    sample_rate: int = 32000
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    fmax_aug_range: int = 2000
    preemphasis: float = 0.97
    log_offset: float = 1e-5
    shift: float = 4.5  # normalisation: (log-mel + shift) / scale
    scale: float = 5.0

    @property
    def eval_fmax(self) -> float:
        """The mel bank's top frequency (integer arithmetic, as the reference)."""
        return float(self.fmax) if self.fmax is not None else float(self.sample_rate // 2 - self.fmax_aug_range // 2)

    def frames(self, n_samples: int) -> int:
        """Mel frames for a waveform of n_samples (pre-emphasis drops one sample, then a centred STFT)."""
        return frame_count(n_samples - 1, self.hop_length)

    def can_share_frames(self, window: int, hop: int) -> bool:
        """Whether windows `hop` samples apart can share their interior STFT frames."""
        half = self.n_fft // 2
        first = -(-half // self.hop_length)  # first frame whose support lies inside the window
        return hop % self.hop_length == 0 and (window - 1 - half) // self.hop_length >= first


# torch's float32 Kaldi mel of the FFT bins (`frontends.torch_bin_mels`) as torch computes them through MKL, whose
# log takes a code path by CPU: the reproducible one (MKL_CBWR=COMPATIBLE, which is also SSE4.2's and AVX's; what
# AMD CPUs get, and the goldens' values), AVX2's (Intel CPUs without AVX-512: 6 bins 1-2 ulp away) and AVX-512's
# (35 bins). Each was saved by torch with MKL_CBWR set to that path, and a test recomputes them. The official
# front-end computes its mel bank from these mels, so the torch-free front-end takes the set of the path this CPU's
# MKL takes (`mkl_log_path`): on an AVX-512 Intel CPU the reproducible set moved 1-s-window scores by 3e-4.
BUNDLED_BIN_MELS = {(1024, 32000.0): "kaldi_bin_mels_1024_32000"}
MKL_LOG_PATHS = ("compatible", "avx2", "avx512")


def mkl_log_path(cpuinfo: str | None = None, environ: "os._Environ[str] | dict[str, str] | None" = None) -> str:
    """The code path (`MKL_LOG_PATHS`) MKL's vector log takes here: by the CPU's vendor and flags (`/proc/cpuinfo`
    on Linux; elsewhere the reproducible one), capped by MKL_CBWR and MKL_ENABLE_INSTRUCTIONS as MKL caps it."""
    env = os.environ if environ is None else environ
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read(1 << 16)
        except OSError:
            cpuinfo = ""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines()[:40] if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    level = 0
    if fields.get("vendor_id") == "GenuineIntel":  # MKL takes its fast paths on Intel CPUs only
        if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
            level = 2
        elif {"avx2", "fma"} <= flags:
            level = 1
    for name in ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS"):
        value = env.get(name, "").split(",")[0].strip().upper()
        if value.startswith("AVX512"):
            cap = 2
        elif value == "AVX2":
            cap = 1
        elif value in ("COMPATIBLE", "SSE2", "SSE3", "SSSE3", "SSE4_1", "SSE4_2", "AVX"):
            cap = 0
        else:  # unset, AUTO or unknown: no cap
            continue
        level = min(level, cap)
    return MKL_LOG_PATHS[level]


def kaldi_bin_mels(n_fft: int, sample_rate: float, path: str | None = None) -> np.ndarray:
    """Kaldi mel of each FFT bin k * sr / n_fft, k < n_fft // 2, in float32 as torch's float32 log gives it on MKL
    code path `path` (default: this CPU's, `mkl_log_path`), what torchaudio's `get_mel_banks` evaluates: the bundled
    values where they exist (EfficientAT's 1024 / 32 kHz), else a correctly rounded log, which differs from torch's
    in the last bit of a few bins."""
    bundled = BUNDLED_BIN_MELS.get((int(n_fft), float(sample_rate)))
    if bundled is not None:
        path = mkl_log_path() if path is None else path
        name = bundled + ("" if path == "compatible" else f"_{path}") + ".npy"
        with resources.as_file(resources.files("streamtag.assets") / name) as file:
            mels = np.load(file)
        if mels.shape == (n_fft // 2,) and mels.dtype == np.float32:
            return mels
    inner = 1.0 + np.float32(sample_rate / n_fft) * np.arange(n_fft // 2, dtype=np.float32) / 700.0
    return 1127.0 * np.log(inner.astype(np.float64)).astype(np.float32)


def kaldi_mel_bank(n_mels: int, n_fft: int, sample_rate: float, low_freq: float, high_freq: float,
                   bin_mels: np.ndarray | None = None) -> np.ndarray:
    """Kaldi's triangular mel bank in float32, [n_mels, n_fft // 2], as torchaudio's `get_mel_banks` computes it;
    `bin_mels`: the mel of each FFT bin (default `kaldi_bin_mels`)."""
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if n_mels <= 3 or n_fft % 2 or not (0.0 <= low_freq < high_freq <= nyquist):
        raise ValueError(f"bad mel bank: {n_mels} bins, n_fft {n_fft}, {low_freq}-{high_freq} Hz at {sample_rate} Hz")
    mel_low, mel_high = kaldi_mel(low_freq), kaldi_mel(high_freq)
    delta = (mel_high - mel_low) / (n_mels + 1)
    index = np.arange(n_mels, dtype=np.float32)[:, None]
    left = mel_low + index * np.float32(delta)
    centre = mel_low + (index + 1.0) * np.float32(delta)
    right = mel_low + (index + 2.0) * np.float32(delta)
    mel = kaldi_bin_mels(n_fft, sample_rate) if bin_mels is None else bin_mels
    up = (mel[None] - left) / (centre - left)
    down = (right - mel[None]) / (right - centre)
    return np.maximum(np.float32(0.0), np.minimum(up, down)).astype(np.float32)


class MelGroup(NamedTuple):
    """Bands [lo, hi) of a mel bank with their nonzero bins [start, stop): weights [hi - lo, stop - start] (float64)."""

    lo: int
    hi: int
    start: int
    stop: int
    weights: np.ndarray


def mel_groups(bank: np.ndarray, size: int = MEL_GROUP) -> list[MelGroup]:
    """The bank [n_mels, n_bins] cut into groups of `size` adjacent bands, each kept over its nonzero bins only
    (empty groups: no bins)."""
    groups = []
    for lo in range(0, len(bank), size):
        rows = bank[lo:lo + size]
        used = np.flatnonzero(rows.any(axis=0))
        start, stop = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 0)
        groups.append(MelGroup(lo, lo + len(rows), start, stop, np.ascontiguousarray(rows[:, start:stop], np.float64)))
    return groups


def symmetric_hann(size: int) -> np.ndarray:
    """The symmetric Hann window in float32 (`torch.hann_window(size, periodic=False)`)."""
    n = np.arange(size, dtype=np.float32)
    return (np.cos(n * np.float32(2.0 * math.pi / (size - 1))) * np.float32(-0.5) + np.float32(0.5)).astype(np.float32)


class FrameCache:
    """The shared log-mel frames of a stream's last batch, by absolute frame index: the next batch of the same
    stream reuses those it overlaps (one cache per stream, and per model of an ensemble: `member`).

    Frames are [n_mels, G] arrays, numpy or torch (`join` concatenates them along the frame axis).
    """

    def __init__(self) -> None:
        self.start = 0  # absolute index of the first cached frame
        self.frames = None  # [n_mels, G]
        self._members: dict[int, FrameCache] = {}

    def clear(self) -> None:
        self.frames = None
        for member in self._members.values():
            member.clear()

    def member(self, i: int) -> "FrameCache":
        """The cache of an ensemble's i-th model."""
        return self._members.setdefault(i, FrameCache())

    def frames_for(self, lo: int, hi: int, compute: Callable, join: Callable | None = None):
        """Frames [lo, hi) as [n_mels, hi - lo]: the cached ones reused, `compute(a, b)` for the others; the
        result becomes the cache."""
        cached = self.frames
        c0 = self.start
        c1 = c0 + (0 if cached is None else cached.shape[1])
        a, b = max(lo, c0), min(hi, c1)
        if cached is None or a >= b:
            out = compute(lo, hi)
        else:
            parts = [compute(lo, a)] if lo < a else []
            parts.append(cached[:, a - c0:b - c0])
            if b < hi:
                parts.append(compute(b, hi))
            out = parts[0] if len(parts) == 1 else (join or (lambda p: np.concatenate(p, axis=1)))(parts)
        self.start, self.frames = lo, out
        return out


class NumpyEfficientATMel:
    """EfficientAT's eval-mode log-mel in numpy: float32 [B, N] -> [B, 1, n_mels, T], T = 1 + (N - 1) // hop_length.

    Pre-emphasis, centred reflect-padded STFT with a symmetric Hann window, power, Kaldi mel bank with a
    zero Nyquist column, ln(x + log_offset), (x + shift) / scale; `windows()` shares STFT frames, within a
    batch and, given a `FrameCache`, with the stream's previous batch.
    """

    def __init__(self, settings: EfficientATMelSettings) -> None:
        s = self.settings = settings
        self.sample_rate, self.hop_length, self.n_fft, self.n_mels = s.sample_rate, s.hop_length, s.n_fft, s.n_mels
        bank = kaldi_mel_bank(s.n_mels, s.n_fft, float(s.sample_rate), float(s.fmin), s.eval_fmax)
        self.mel_basis_t = np.ascontiguousarray(np.pad(bank, ((0, 0), (0, 1))).T)  # [n_fft//2+1, n_mels]
        # the bank as groups of MEL_GROUP adjacent bands, each over the bins where any of them is nonzero: dense
        # products that skip the zeros (a triangle spans a few bins; 8x fewer operations than the whole bank). Each
        # is far below OpenBLAS's threading threshold (one thread, none left spinning beside the network's), and
        # BLAS never splits the summed axis, so the energies do not follow its thread count
        self._groups = mel_groups(bank)
        self._left = (s.n_fft - s.win_length) // 2  # torch.stft pads the window to n_fft, centred
        self.window = np.zeros(s.n_fft, np.float32)
        self.window[self._left:self._left + s.win_length] = symmetric_hann(s.win_length)
        self._hann = self.window[self._left:self._left + s.win_length]
        self._edge: tuple[tuple[int, int, int] | None, np.ndarray] = (None, np.empty((0, s.n_fft), np.intp))

    def frames(self, n_samples: int) -> int:
        return self.settings.frames(n_samples)

    def can_share_frames(self, window: int, hop: int) -> bool:
        return self.settings.can_share_frames(window, hop)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """Log-mels of waveforms [B, N] (float32)."""
        y = self._preemphasis(np.atleast_2d(np.asarray(wave, np.float32)))
        half = self.n_fft // 2
        padded = np.pad(y, ((0, 0), (half, half)), mode="reflect")
        return np.stack([self._log_mel(self._frames(row)) for row in padded])[:, None]

    def _preemphasis(self, wave: np.ndarray) -> np.ndarray:
        # y[n] = x[n+1] - 0.97 x[n], in float32 as the torch front-end
        return wave[..., 1:] + np.float32(-self.settings.preemphasis) * wave[..., :-1]

    def _frames(self, y: np.ndarray) -> np.ndarray:
        """The STFT frames [T, n_fft] of a 1-D y without padding (a strided view)."""
        return sliding_window_view(y, self.n_fft)[::self.hop_length]

    def _log_mel(self, frames: np.ndarray) -> np.ndarray:
        """Frames [T, n_fft] -> normalised float32 log-mel [n_mels, T]: window, |rfft|^2, mel bank, log.

        In blocks of FFT_BLOCK frames (their buffers stay in cache), in float64 up to the mel energies: numpy's
        float64 FFT is faster than its float32 one and the windowed frame is exact. The mel product always runs
        on whole blocks (rows past the frames are ignored): BLAS picks its kernel by shape, so a frame's energies
        do not depend on how many frames share its block.
        """
        n, left, width, bins = len(frames), self._left, len(self._hann), self.n_fft // 2 + 1
        mel = np.empty((self.n_mels, n), np.float32)
        buffer = np.zeros((min(n, FFT_BLOCK), self.n_fft), np.float64)  # the window is zero outside its middle
        spectrum = np.empty((min(n, FFT_BLOCK), bins), np.complex128)  # reused by every block: no allocation
        power = np.zeros((FFT_BLOCK, bins), np.float64)
        energies = np.empty((self.n_mels, FFT_BLOCK), np.float64)
        for i in range(0, n, FFT_BLOCK):
            block = frames[i:i + FFT_BLOCK]
            m = len(block)
            windowed = buffer[:m]
            np.multiply(block[:, left:left + width], self._hann, out=windowed[:, left:left + width])
            squares = np.fft.rfft(windowed, axis=-1, out=spectrum[:m]).view(np.float64)  # [m, 2 * bins]: re, im
            np.square(squares, out=squares)
            np.add(squares[:, 0::2], squares[:, 1::2], out=power[:m])
            for g in self._groups:
                if g.stop > g.start:
                    np.matmul(g.weights, power[:, g.start:g.stop].T, out=energies[g.lo:g.hi])
                else:
                    energies[g.lo:g.hi] = 0.0
            mel[:, i:i + m] = energies[:, :m]
        s = self.settings
        mel += np.float32(s.log_offset)
        np.log(mel, out=mel)
        mel += np.float32(s.shift)
        mel /= np.float32(s.scale)
        return mel

    def _shared(self, y: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Log-mels [n_mels, hi - lo] of the interior frames lo..hi-1 of y (frame g centred at y index g * hop)."""
        hop, half = self.hop_length, self.n_fft // 2
        return self._log_mel(self._frames(y[lo * hop - half:(hi - 1) * hop + half]))

    def _edge_index(self, window: int, first: int, last: int) -> np.ndarray:
        """Indices [E, n_fft] into a window's pre-emphasised samples of its edge frames (those before `first` and
        after `last`), with the centred STFT's reflect padding folded in."""
        key = (window, first, last)
        cached_key, index = self._edge  # one attribute: the front-end may serve several threads
        if cached_key != key:
            hop, half, n = self.hop_length, self.n_fft // 2, window - 1
            frames = np.r_[0:first, last + 1:self.frames(window)]
            index = frames[:, None] * hop + np.arange(self.n_fft) - half
            index = np.abs(index)  # reflect at the start: -i -> i
            index = np.where(index > n - 1, 2 * (n - 1) - index, index)  # and at the end: n - 1 + i -> n - 1 - i
            self._edge = key, index
        return index

    def windows(self, span: np.ndarray, count: int, step: int, window: int, start: int | None = None,
                cache: FrameCache | None = None) -> np.ndarray:
        """Log-mels of the windows span[k*step : k*step + window], k < count, as __call__ gives them stacked.

        Interior frames are computed once for the span and shared; the frames touched by each window's
        reflect padding are computed per window (as `frontends.EfficientATMel.windows`). With `start`, the
        span's absolute position in its stream, and the stream's `cache`, interior frames the previous batch
        computed are reused. Needs `can_share_frames(window, step)`.
        """
        hop, half = self.hop_length, self.n_fft // 2
        first = -(-half // hop)  # frames [first, last] of every window are shared
        last = (window - 1 - half) // hop
        y = self._preemphasis(np.asarray(span, np.float32))
        lo, hi = first, (count - 1) * (step // hop) + last + 1  # the span's interior frames
        if cache is not None and start is not None and start % hop == 0:
            base = start // hop
            shared = cache.frames_for(base + lo, base + hi, lambda a, b: self._shared(y, a - base, b - base))
        else:
            shared = self._shared(y, lo, hi)
        middle = sliding_window_view(shared, last - first + 1, axis=1)[:, ::step // hop][:, :count].transpose(1, 0, 2)
        # each window's edge frames, gathered from the span as reflect padding would place them
        offsets = np.arange(count) * step
        edge_frames = y[(offsets[:, None, None] + self._edge_index(window, first, last)).reshape(-1, self.n_fft)]
        edges = self._log_mel(edge_frames).reshape(self.n_mels, count, -1).transpose(1, 0, 2)
        return np.concatenate([edges[..., :first], middle, edges[..., first:]], axis=-1)[:, None]
