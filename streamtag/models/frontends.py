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
