"""Front-ends: plain modules mapping waveforms [B, N] to model inputs, every parameter explicit."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchaudio.compliance import kaldi


class EfficientATMel(nn.Module):
    """EfficientAT's eval-mode log-mel (`AugmentMelSTFT` without augmentation): [B, N] -> [B, 1, n_mels, T].

    Pre-emphasis (one sample shorter), centred reflect-padded STFT with a symmetric Hann
    window, power, Kaldi mel bank with a zero Nyquist column, ln(x + 1e-5), (x + 4.5) / 5.
    T = 1 + (N - 1) // hop_length.
    """

    def __init__(
        self,
        sample_rate: int = 32000,
        n_fft: int = 1024,
        win_length: int = 800,
        hop_length: int = 320,
        n_mels: int = 128,
        fmin: float = 0.0,
        fmax: float | None = None,
        fmax_aug_range: int = 2000,
        preemphasis: float = 0.97,
        log_offset: float = 1e-5,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.log_offset = log_offset
        # eval mode: fmax = sr/2 - fmax_aug_range/2 (integer arithmetic, as the reference)
        self.fmin = float(fmin)
        self.fmax = float(fmax) if fmax is not None else float(sample_rate // 2 - fmax_aug_range // 2)
        bank, _ = kaldi.get_mel_banks(n_mels, n_fft, float(sample_rate), self.fmin, self.fmax,
                                      vtln_low=100.0, vtln_high=-500.0, vtln_warp_factor=1.0)
        self.register_buffer("mel_basis", F.pad(bank, (0, 1)), persistent=False)  # [n_mels, n_fft//2+1]
        self.register_buffer("window", torch.hann_window(win_length, periodic=False), persistent=False)
        self.register_buffer("preemphasis_kernel", torch.tensor([[[-preemphasis, 1.0]]]), persistent=False)

    def frames(self, n_samples: int) -> int:
        """Number of mel frames for a waveform of n_samples."""
        return 1 + (n_samples - 1) // self.hop_length

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
        return ((mel + 4.5) / 5.0).unsqueeze(1)

    def can_share_frames(self, window: int, hop: int) -> bool:
        """Whether `windows()` can share STFT frames between windows `hop` samples apart."""
        half = self.n_fft // 2
        first = -(-half // self.hop_length)  # first frame whose support lies inside the window
        return hop % self.hop_length == 0 and (window - 1 - half) // self.hop_length >= first

    def windows(self, span: Tensor, count: int, step: int, window: int) -> Tensor:
        """Mels of the windows span[k*step : k*step + window], k < count, as forward() gives them stacked.

        Interior STFT frames only see samples inside their window, so their log-mel is
        computed once for the whole span and shared; the frames touched by each window's
        reflect padding (the first two and the last, for the default settings) are computed
        per window. Equal to forward() up to float rounding of the mel product (<= 3e-7).
        Needs `can_share_frames(window, step)`.
        """
        hop, half = self.hop_length, self.n_fft // 2
        first = -(-half // hop)  # frames [first, last] of every window are shared
        last = (window - 1 - half) // hop
        n_frames = self.frames(window)
        y = self._preemphasis(span.unsqueeze(0))[0]  # y of a window = the span's y, sliced
        # shared frame g is centred at y index (g + first) * hop
        shared = self._log_mel(self._power(y[first * hop - half:].unsqueeze(0), center=False))[0, 0]
        middle = shared.unfold(1, last - first + 1, step // hop)[:, :count].permute(1, 0, 2)
        # edge frames from short pieces of each window, reflect-padded exactly as the whole window
        left = self._power(y.unfold(0, first * hop + half, step)[:count], center=True)[..., :first]
        cut = ((last + 1) * hop - half) // hop * hop  # piece start: frame-aligned, left of frame last+1
        right = self._power(y[cut:].unfold(0, window - 1 - cut, step)[:count], center=True)
        right = right[..., last + 1 - cut // hop:n_frames - cut // hop]
        edges = self._log_mel(torch.cat([left, right], dim=-1))[:, 0]
        return torch.cat([edges[..., :first], middle, edges[..., first:]], dim=-1).unsqueeze(1)


class KaldiFbank(nn.Module):
    """Kaldi-compatible log-mel fbank (`torchaudio.compliance.kaldi.fbank`), normalised: [B, N] -> [B, T, n_mels].

    Per row: optional removal of the waveform mean, multiplication by `scale` (BEATs: 2**15),
    fbank with 25 ms / 10 ms frames, `snip_edges` (T = 1 + (N - 400) // 160 at 16 kHz), then
    optional pad (zero log-mel rows) or cut to `target_length`, then (x - mean) / (2 * std).
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 128, window_type: str = "hanning",
                 scale: float = 1.0, remove_wave_mean: bool = True, htk_compat: bool = True,
                 mean: float = 0.0, std: float = 0.5, target_length: int | None = None,
                 frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.window_type = window_type
        self.scale = scale
        self.remove_wave_mean = remove_wave_mean
        self.htk_compat = htk_compat
        self.mean = mean
        self.std = std
        self.target_length = target_length
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.win_length = int(sample_rate * frame_length_ms / 1000)
        self.hop_length = int(sample_rate * frame_shift_ms / 1000)

    def frames(self, n_samples: int) -> int:
        """Fbank frames of a waveform of n_samples (before pad or cut)."""
        return 0 if n_samples < self.win_length else 1 + (n_samples - self.win_length) // self.hop_length

    def fbank(self, wave: Tensor) -> Tensor:
        """Raw log-mel fbank of each row (natural log), [B, T, n_mels], before pad/cut and normalisation."""
        rows = []
        with torch.autocast(device_type=wave.device.type, enabled=False):
            for row in wave.float():
                if self.remove_wave_mean:
                    row = row - row.mean()
                rows.append(kaldi.fbank(
                    (row * self.scale).unsqueeze(0), htk_compat=self.htk_compat, sample_frequency=self.sample_rate,
                    use_energy=False, window_type=self.window_type, num_mel_bins=self.n_mels, dither=0.0,
                    frame_length=self.frame_length_ms, frame_shift=self.frame_shift_ms))
        return torch.stack(rows)

    def forward(self, wave: Tensor) -> Tensor:
        return self.fit(self.fbank(wave), self.target_length)

    def fit(self, fbank: Tensor, frames: int | None) -> Tensor:
        """Pad (zero log-mel rows) or cut a raw fbank to `frames` (None: as it is), then normalise."""
        if frames is not None:
            t = fbank.shape[1]
            fbank = F.pad(fbank, (0, 0, 0, frames - t)) if t < frames else fbank[:, :frames]
        return (fbank - self.mean) / (2 * self.std)
