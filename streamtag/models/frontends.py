"""Front-ends: plain modules mapping waveforms [B, N] to model inputs, every parameter explicit.

The mel banks and the Kaldi fbank are written here (in float32, in the order of operations of
torchaudio's `compliance.kaldi` and `functional.melscale_fbanks`, which the official models use),
so streamtag needs no torchaudio: its compiled library must match torch exactly and breaks
installs whenever the two drift apart.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .mel import EfficientATMelSettings, FrameCache, frame_count, kaldi_mel_bank

EFFICIENTAT_MEL = EfficientATMelSettings()  # the defaults of EfficientATMel's arguments

KALDI_EPSILON = torch.finfo(torch.float32).eps  # Kaldi's floor before the log


class Frontend(nn.Module):
    """A front-end: waveforms [B, N] at `sample_rate` -> model input, `frames(N)` time rows `hop_length` apart.

    A front-end that can compute overlapping windows from one shared STFT says so with
    `can_share_frames` and implements `windows`.
    """

    sample_rate: int
    hop_length: int

    def frames(self, n_samples: int) -> int:
        """Time rows of the output for a waveform of n_samples."""
        raise NotImplementedError

    def can_share_frames(self, window: int, hop: int) -> bool:
        """Whether `windows()` can share STFT frames between windows `hop` samples apart."""
        return False

    def windows(self, span: Tensor, count: int, step: int, window: int, start: int | None = None,
                cache: FrameCache | None = None) -> Tensor:
        """Outputs of the windows span[k*step : k*step + window], k < count, stacked (see `can_share_frames`);
        with `start` (the span's position in its stream) and the stream's `cache`, frames of its last batch."""
        raise NotImplementedError(f"{type(self).__name__} does not share frames between windows")


def kaldi_mel_banks(n_mels: int, n_fft: int, sample_rate: float, low_freq: float, high_freq: float) -> Tensor:
    """Kaldi's triangular mel bank (peak 1, no warping), [n_mels, n_fft // 2]; high_freq <= 0 counts from Nyquist.

    As `torchaudio.compliance.kaldi.get_mel_banks` with vtln_warp_factor 1.0: triangles equally spaced
    in Kaldi mel between low_freq and high_freq, evaluated at the bins' mel from torch's float32 log
    (`torch_bin_mels`), so bit for bit torchaudio's on this CPU (and the numpy front-end's, which bundles those mels
    for each of MKL's code paths and takes this CPU's: see `mel.BUNDLED_BIN_MELS`).
    """
    return torch.from_numpy(kaldi_mel_bank(n_mels, n_fft, sample_rate, low_freq, high_freq,
                                           torch_bin_mels(n_fft, sample_rate).numpy()))


def torch_bin_mels(n_fft: int, sample_rate: float) -> Tensor:
    """Kaldi mel of each FFT bin k * sr / n_fft, k < n_fft // 2, with torch's float32 ops as torchaudio computes it."""
    return 1127.0 * (1.0 + (sample_rate / n_fft) * torch.arange(float(n_fft // 2)) / 700.0).log()


def htk_mel_banks(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> Tensor:
    """HTK triangular mel bank without normalisation, [n_freqs, n_mels] (as torchaudio's `melscale_fbanks`)."""
    freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_min, m_max = (2595.0 * math.log10(1.0 + f / 700.0) for f in (f_min, f_max))
    points = 700.0 * (10.0 ** (torch.linspace(m_min, m_max, n_mels + 2) / 2595.0) - 1.0)
    widths = points[1:] - points[:-1]
    slopes = points.unsqueeze(0) - freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    return torch.max(torch.zeros(1), torch.min(down, up))


def kaldi_window(window_type: str, size: int, blackman_coeff: float = 0.42) -> Tensor:
    """Kaldi's analysis windows: hanning, hamming, povey (hann ** 0.85), rectangular, blackman (symmetric)."""
    if window_type == "hanning":
        return torch.hann_window(size, periodic=False)
    if window_type == "hamming":
        return torch.hamming_window(size, periodic=False, alpha=0.54, beta=0.46)
    if window_type == "povey":
        return torch.hann_window(size, periodic=False).pow(0.85)
    if window_type == "rectangular":
        return torch.ones(size)
    if window_type == "blackman":
        a, n = 2 * math.pi / (size - 1), torch.arange(size, dtype=torch.float32)
        return blackman_coeff - 0.5 * torch.cos(a * n) + (0.5 - blackman_coeff) * torch.cos(2 * a * n)
    raise ValueError(f"unknown Kaldi window type {window_type!r}")


class EfficientATMel(Frontend):
    """EfficientAT's eval-mode log-mel (`AugmentMelSTFT` without augmentation): [B, N] -> [B, 1, n_mels, T].

    Pre-emphasis (one sample shorter), centred reflect-padded STFT with a symmetric Hann
    window, power, Kaldi mel bank with a zero Nyquist column, ln(x + 1e-5), (x + 4.5) / 5.
    T = 1 + (N - 1) // hop_length.
    """

    def __init__(
        self,
        sample_rate: int = EFFICIENTAT_MEL.sample_rate,
        n_fft: int = EFFICIENTAT_MEL.n_fft,
        win_length: int = EFFICIENTAT_MEL.win_length,
        hop_length: int = EFFICIENTAT_MEL.hop_length,
        n_mels: int = EFFICIENTAT_MEL.n_mels,
        fmin: float = EFFICIENTAT_MEL.fmin,
        fmax: float | None = EFFICIENTAT_MEL.fmax,
        fmax_aug_range: int = EFFICIENTAT_MEL.fmax_aug_range,
        preemphasis: float = EFFICIENTAT_MEL.preemphasis,
        log_offset: float = EFFICIENTAT_MEL.log_offset,
    ) -> None:
        super().__init__()
        self.settings = EfficientATMelSettings(sample_rate, n_fft, win_length, hop_length, n_mels, fmin, fmax,
                                               fmax_aug_range, preemphasis, log_offset)
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.log_offset = log_offset
        self.fmin = float(fmin)
        self.fmax = self.settings.eval_fmax
        bank = kaldi_mel_banks(n_mels, n_fft, float(sample_rate), self.fmin, self.fmax)
        self.register_buffer("mel_basis", F.pad(bank, (0, 1)), persistent=False)  # [n_mels, n_fft//2+1]
        self.register_buffer("window", torch.hann_window(win_length, periodic=False), persistent=False)
        self.register_buffer("preemphasis_kernel", torch.tensor([[[-preemphasis, 1.0]]]), persistent=False)

    @classmethod
    def from_settings(cls, settings: EfficientATMelSettings) -> "EfficientATMel":
        """The front-end of `settings` (the numpy one, `mel.NumpyEfficientATMel`, takes the same)."""
        return cls(settings.sample_rate, settings.n_fft, settings.win_length, settings.hop_length, settings.n_mels,
                   settings.fmin, settings.fmax, settings.fmax_aug_range, settings.preemphasis, settings.log_offset)

    def frames(self, n_samples: int) -> int:
        """Mel frames for a waveform of n_samples (pre-emphasis drops one sample, then a centred STFT)."""
        return self.settings.frames(n_samples)

    def forward(self, wave: Tensor) -> Tensor:
        return self._log_mel(self._power(self._preemphasis(wave), center=True))

    def _preemphasis(self, wave: Tensor) -> Tensor:
        # y[n] = x[n+1] - 0.97 x[n]: the reference's 2-tap conv1d, bit for bit, without its overhead
        return wave[..., 1:] + self.preemphasis_kernel[0, 0, 0] * wave[..., :-1]

    def _power(self, y: Tensor, center: bool) -> Tensor:
        spec = torch.stft(y, self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=self.window, center=center, normalized=False, return_complex=True)
        return spec.real.square() + spec.imag.square()

    def _log_mel(self, power: Tensor) -> Tensor:
        with torch.autocast(device_type=power.device.type, enabled=False):
            mel = torch.matmul(self.mel_basis, power.float())
        mel = (mel + self.log_offset).log()
        return ((mel + self.settings.shift) / self.settings.scale).unsqueeze(1)

    def can_share_frames(self, window: int, hop: int) -> bool:
        return self.settings.can_share_frames(window, hop)

    def windows(self, span: Tensor, count: int, step: int, window: int, start: int | None = None,
                cache: FrameCache | None = None) -> Tensor:
        """Mels of the windows span[k*step : k*step + window], k < count, as forward() gives them stacked.

        Interior STFT frames only see samples inside their window, so their log-mel is
        computed once for the whole span and shared (with `start`, the span's position in its
        stream, and the stream's `cache`, also with its previous batch); the frames touched by
        each window's reflect padding (the first two and the last, for the default settings) are
        computed per window. Equal to forward() up to float rounding of the mel product
        (<= 3e-7). Needs `can_share_frames(window, step)`.
        """
        hop, half = self.hop_length, self.n_fft // 2
        first = -(-half // hop)  # frames [first, last] of every window are shared
        last = (window - 1 - half) // hop
        n_frames = self.frames(window)
        y = self._preemphasis(span.unsqueeze(0))[0]  # y of a window = the span's y, sliced
        lo, hi = first, (count - 1) * (step // hop) + last + 1  # the span's interior frames, frame g centred at g * hop

        def interior(a: int, b: int) -> Tensor:
            return self._log_mel(self._power(y[a * hop - half:(b - 1) * hop + half].unsqueeze(0), center=False))[0, 0]

        if cache is not None and start is not None and start % hop == 0:
            base = start // hop
            shared = cache.frames_for(base + lo, base + hi, lambda a, b: interior(a - base, b - base),
                                      lambda parts: torch.cat(parts, dim=1))
        else:
            shared = interior(lo, hi)
        middle = shared.unfold(1, last - first + 1, step // hop)[:, :count].permute(1, 0, 2)
        # edge frames from short pieces of each window, reflect-padded exactly as the whole window
        left = self._power(y.unfold(0, first * hop + half, step)[:count], center=True)[..., :first]
        cut = ((last + 1) * hop - half) // hop * hop  # piece start: frame-aligned, left of frame last+1
        right = self._power(y[cut:].unfold(0, window - 1 - cut, step)[:count], center=True)
        right = right[..., last + 1 - cut // hop:n_frames - cut // hop]
        edges = self._log_mel(torch.cat([left, right], dim=-1))[:, 0]
        return torch.cat([edges[..., :first], middle, edges[..., first:]], dim=-1).unsqueeze(1)


class KaldiFbank(Frontend):
    """Kaldi-compatible log-mel fbank (`torchaudio.compliance.kaldi.fbank`), normalised: [B, N] -> [B, T, n_mels].

    Per row: optional removal of the waveform mean, multiplication by `scale` (BEATs: 2**15),
    fbank with 25 ms / 10 ms frames, `snip_edges` (T = 1 + (N - 400) // 160 at 16 kHz), then
    optional pad (zero log-mel rows) or cut to `target_length` (or, with `frames_multiple`, padding up to
    a multiple of it, at least one), then (x - mean) / (2 * std).
    The fbank: per frame DC removal, pre-emphasis 0.97 (first sample replicated), the window,
    zero padding to a power of two, |rfft|^2, the Kaldi mel bank (20 Hz to Nyquist, zero Nyquist
    column), ln(max(x, float32 eps)); no dither, no energy column.
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 128, window_type: str = "hanning",
                 scale: float = 1.0, remove_wave_mean: bool = True, htk_compat: bool = True,
                 mean: float = 0.0, std: float = 0.5, target_length: int | None = None,
                 frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0,
                 low_freq: float = 20.0, preemphasis: float = 0.97, frames_multiple: int | None = None) -> None:
        super().__init__()
        if target_length is not None and frames_multiple is not None and target_length % frames_multiple:
            raise ConfigError(f"target_length must be a multiple of {frames_multiple}, got {target_length}")
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.window_type = window_type
        self.scale = scale
        self.remove_wave_mean = remove_wave_mean
        self.htk_compat = htk_compat  # only moves the energy column, which is not produced
        self.mean = mean
        self.std = std
        self.target_length = target_length
        self.frames_multiple = frames_multiple
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.preemphasis = preemphasis
        self.win_length = int(sample_rate * frame_length_ms / 1000)
        self.hop_length = int(sample_rate * frame_shift_ms / 1000)
        self.n_fft = 1 << (self.win_length - 1).bit_length()
        bank = F.pad(kaldi_mel_banks(n_mels, self.n_fft, float(sample_rate), low_freq, 0.0), (0, 1))
        self.register_buffer("mel_bank", bank, persistent=False)  # [n_mels, n_fft//2+1]
        self.register_buffer("window", kaldi_window(window_type, self.win_length), persistent=False)

    def fbank_frames(self, n_samples: int) -> int:
        """Raw fbank frames of a waveform of n_samples (snip_edges), before pad or cut."""
        return frame_count(n_samples, self.hop_length, self.win_length)

    def frames(self, n_samples: int) -> int:
        """Rows of the output: `target_length`, else the raw frames (rounded up to `frames_multiple`)."""
        if self.target_length is not None:
            return self.target_length
        raw = self.fbank_frames(n_samples)
        if self.frames_multiple is None:
            return raw
        return max(1, -(-raw // self.frames_multiple)) * self.frames_multiple

    def fbank(self, wave: Tensor) -> Tensor:
        """Raw log-mel fbank of each row (natural log), [B, T, n_mels], before pad/cut and normalisation."""
        if wave.shape[-1] < self.win_length:
            raise ValueError(f"a Kaldi fbank needs at least {self.win_length} samples, got {wave.shape[-1]}")
        with torch.autocast(device_type=wave.device.type, enabled=False):
            x = wave.float()
            if self.remove_wave_mean:
                x = x - x.mean(dim=-1, keepdim=True)
            frames = (x * self.scale).unfold(-1, self.win_length, self.hop_length)  # [B, T, win]
            frames = frames - frames.mean(dim=-1, keepdim=True)
            previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
            frames = (frames - self.preemphasis * previous) * self.window
            frames = F.pad(frames, (0, self.n_fft - self.win_length))
            power = torch.fft.rfft(frames).abs().pow(2.0)
            mel = torch.matmul(power, self.mel_bank.T)
            return torch.clamp_min(mel, KALDI_EPSILON).log()

    def forward(self, wave: Tensor) -> Tensor:
        return self.fit(self.fbank(wave), self.frames(wave.shape[-1]))

    def fit(self, fbank: Tensor, frames: int | None) -> Tensor:
        """Pad (zero log-mel rows) or cut a raw fbank to `frames` (None: as it is), then normalise."""
        if frames is not None:
            t = fbank.shape[1]
            fbank = F.pad(fbank, (0, 0, 0, frames - t)) if t < frames else fbank[:, :frames]
        return (fbank - self.mean) / (2 * self.std)


class ATSTMel(Frontend):
    """ATST-Frame front-end: [B, N] at 16 kHz -> [B, 1, n_mels, T], T = N // hop_length + 1.

    torchaudio `MelSpectrogram` (periodic Hann, centred reflect-padded STFT, power 2, HTK mel
    bank without normalisation), `AmplitudeToDB(power, top_db)` with the maximum taken per item
    over the whole input, then MinMax scaling of [norm_min, norm_max] dB to [-1, 1].
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, win_length: int = 1024, hop_length: int = 160,
                 f_min: float = 60.0, f_max: float = 7800.0, n_mels: int = 64, top_db: float = 80.0,
                 amin: float = 1e-10, norm_min: float = -79.6482, norm_max: float = 50.6842) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.top_db = top_db
        self.amin = amin
        self.norm_min = norm_min
        self.norm_max = norm_max
        bank = htk_mel_banks(n_fft // 2 + 1, float(f_min), float(f_max), n_mels, sample_rate)
        self.register_buffer("mel_bank", bank, persistent=False)  # [n_fft//2+1, n_mels]
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

    def frames(self, n_samples: int) -> int:
        return frame_count(n_samples, self.hop_length)

    def forward(self, wave: Tensor) -> Tensor:
        with torch.autocast(device_type=wave.device.type, enabled=False):
            spec = torch.stft(wave.float(), self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                              window=self.window, center=True, pad_mode="reflect", normalized=False,
                              onesided=True, return_complex=True)
            power = spec.abs().pow(2.0)
            mel = torch.matmul(power.transpose(-1, -2), self.mel_bank).transpose(-1, -2)  # [B, n_mels, T]
            db = 10.0 * torch.log10(torch.clamp(mel, min=self.amin))
            db = torch.max(db, db.amax(dim=(-2, -1), keepdim=True) - self.top_db)
            scaled = (db - self.norm_min) / (self.norm_max - self.norm_min) * 2.0 - 1.0
        return scaled.unsqueeze(1)
