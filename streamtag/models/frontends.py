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
        x = F.conv1d(wave.unsqueeze(1), self.preemphasis_kernel).squeeze(1)
        spec = torch.stft(x, self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=self.window, center=True, normalized=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()
        with torch.autocast(device_type=wave.device.type, enabled=False):
            mel = torch.matmul(self.mel_basis, power.float())
        mel = (mel + self.log_offset).log()
        return ((mel + 4.5) / 5.0).unsqueeze(1)
