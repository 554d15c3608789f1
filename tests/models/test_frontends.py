"""Front-ends: reference constants, Kaldi banks and fbank against float64 re-derivations, frame sharing."""
import math

import numpy as np
import pytest
import torch

from streamtag.models.frontends import (EFFICIENTAT_MEL, EfficientATMel, KaldiFbank, htk_mel_banks, kaldi_mel_banks,
                                         torch_bin_mels)
from streamtag.models.mel import (BUNDLED_BIN_MELS, MKL_LOG_PATHS, FrameCache, NumpyEfficientATMel, kaldi_bin_mels,
                                  mkl_log_path)
from tests.helpers import EFFAT, demo_wave, needs_shared, under_reproducible_mkl

BANK_TOL = 2e-5  # Kaldi bank entries from torch's log on Intel CPUs against the goldens' (57 of 65536 differ, <= 1.8e-5)


@needs_shared
def test_constants_match_the_official_front_end():
    """The bank, window and pre-emphasis kernel bit for bit (a correctly rounded log of the bins' mel moved 57
    bank entries by up to 1.8e-5, and a 1 s window's scores by 3.1e-4). The torch front-end's bank follows torch's
    log, as torchaudio's does: the goldens' exactly where MKL takes its reproducible path (as on the goldens'
    machine), within BANK_TOL on Intel CPUs, whose fast MKL log moves some bins by up to 2 ulp. The numpy front-end's
    bank is torch's on this CPU, and the goldens' where MKL is told to take its reproducible path."""
    fe = EfficientATMel()
    with np.load(EFFAT / "frontend_constants.npz") as c:
        np.testing.assert_allclose(fe.mel_basis.numpy(), c["mel_basis"], rtol=0, atol=BANK_TOL)
        if torch.backends.mkl.is_available():
            np.testing.assert_array_equal(under_reproducible_mkl(
                "from streamtag.models.frontends import EfficientATMel", "EfficientATMel().mel_basis"), c["mel_basis"])
        if torch.backends.mkl.is_available():
            np.testing.assert_array_equal(NumpyEfficientATMel(EFFICIENTAT_MEL).mel_basis_t.T, fe.mel_basis.numpy())
        np.testing.assert_array_equal(under_reproducible_mkl(
            "from streamtag.models.frontends import EFFICIENTAT_MEL\nfrom streamtag.models.mel import NumpyEfficientATMel",
            "NumpyEfficientATMel(EFFICIENTAT_MEL).mel_basis_t.T"), c["mel_basis"])
        np.testing.assert_array_equal(fe.window.numpy(), c["window"])
        np.testing.assert_array_equal(fe.preemphasis_kernel.numpy().ravel(), c["preemphasis_kernel"])
    assert fe.fmax == 15000.0


@pytest.mark.parametrize("n, frames", [(32000, 100), (320000, 1000), (393600, 1230), (321, 2), (1, 1)])
def test_frame_count(n, frames):
    assert EfficientATMel().frames(n) == frames


@pytest.mark.parametrize("window, step, count", [
    (32000, 16000, 8), (320000, 80000, 4), (32000, 32000, 3), (32000, 64000, 3), (48000, 320, 5),
    (1280, 640, 6),
])
def test_shared_frames_equal_per_window_mels(window, step, count):
    fe = EfficientATMel()
    wave = torch.from_numpy(demo_wave(32000))
    span = torch.nn.functional.pad(wave, (0, max(0, (count - 1) * step + window - len(wave))))
    span = span[:(count - 1) * step + window]
    assert fe.can_share_frames(window, step)
    shared = fe.windows(span, count, step, window)
    each = fe(torch.stack([span[k * step:k * step + window] for k in range(count)]))
    assert shared.shape == each.shape == (count, 1, 128, fe.frames(window))
    # the STFT frames are bit-identical; the shared mel product may round differently (<= 3e-7)
    assert (shared - each).abs().max().item() <= 3e-7


@pytest.mark.parametrize("window, step, batches", [
    (32000, 16000, [4, 4, 1, 3]), (320000, 80000, [4, 4, 2]), (32000, 32000, [3, 2]), (48000, 320, [5, 5, 5]),
])
def test_a_frame_cache_shares_frames_between_consecutive_batches(window, step, batches):
    fe = EfficientATMel()
    wave = torch.nn.functional.pad(torch.from_numpy(demo_wave(32000)), (0, sum(batches) * step + window))
    cache, k = FrameCache(), 0
    for count in batches:
        start = k * step
        span = wave[start:start + (count - 1) * step + window]
        got = fe.windows(span, count, step, window, start, cache)
        each = fe(torch.stack([span[j * step:j * step + window] for j in range(count)]))
        assert (got - each).abs().max().item() <= 3e-7
        k += count
    assert cache.frames is not None and cache.start == (k - batches[-1]) * step // fe.hop_length + 2


@pytest.mark.parametrize("window, step, ok", [(32000, 16000, True), (32000, 16001, False), (1152, 320, False),
                                              (1153, 320, True)])
def test_frame_sharing_needs_aligned_steps_and_an_interior(window, step, ok):
    assert EfficientATMel().can_share_frames(window, step) is ok


def kaldi_mel64(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def triangles64(points, at):
    """Peak-1 triangles with corners points[i], points[i+1], points[i+2], evaluated at `at`: [len(points)-2, len(at)]."""
    lo, mid, hi = points[:-2, None], points[1:-1, None], points[2:, None]
    return np.maximum(0.0, np.minimum((at - lo) / (mid - lo), (hi - at) / (hi - mid)))


@pytest.mark.parametrize("n_mels, n_fft, rate, low, high", [(128, 1024, 32000, 0.0, 15000.0), (128, 512, 16000, 20.0, 0.0),
                                                            (64, 256, 8000, 20.0, 3000.0)])
def test_kaldi_mel_bank_is_the_float64_formula(n_mels, n_fft, rate, low, high):
    """Triangles equally spaced in Kaldi mel (1127 ln(1 + f/700)), corners and bins in mel, peak 1."""
    high = high if high > 0 else rate / 2
    corners = np.linspace(kaldi_mel64(low), kaldi_mel64(high), n_mels + 2)
    ref = triangles64(corners, kaldi_mel64(np.arange(n_fft // 2) * rate / n_fft))
    bank = kaldi_mel_banks(n_mels, n_fft, float(rate), low, high if high != rate / 2 else 0.0)
    assert bank.dtype == torch.float32 and bank.shape == (n_mels, n_fft // 2)
    np.testing.assert_allclose(bank.numpy(), ref, rtol=0, atol=3e-5)  # float32 mel values: ~1 ulp of 3000


def test_htk_mel_bank_is_the_float64_formula():
    corners = 700.0 * (10.0 ** (np.linspace(2595 * math.log10(1 + 60 / 700), 2595 * math.log10(1 + 7800 / 700),
                                            66) / 2595.0) - 1.0)
    ref = triangles64(corners, np.linspace(0, 8000, 513)).T
    np.testing.assert_allclose(htk_mel_banks(513, 60.0, 7800.0, 64, 16000).numpy(), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("window_type, scale", [("povey", 2 ** 15), ("hanning", 1.0)])
def test_kaldi_fbank_is_the_float64_recipe(window_type, scale):
    """Kaldi's steps done by hand in float64: frames, DC removal, pre-emphasis, window, |rfft|^2, bank, log."""
    wave = demo_wave(16000)[16000:16000 + 8000]
    fe = KaldiFbank(window_type=window_type, scale=scale)
    got = fe.fbank(torch.from_numpy(wave)[None])[0].numpy()
    x = (wave.astype(np.float64) - wave.mean()) * scale
    frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::160]
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = frames - 0.97 * np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399)
    frames = frames * (hann ** 0.85 if window_type == "povey" else hann)
    power = np.abs(np.fft.rfft(frames, 512)) ** 2
    corners = np.linspace(kaldi_mel64(20.0), kaldi_mel64(8000.0), 130)
    bank = np.pad(triangles64(corners, kaldi_mel64(np.arange(256) * 16000 / 512)), ((0, 0), (0, 1)))
    ref = np.log(np.maximum(power @ bank.T, np.finfo(np.float32).eps))
    assert got.shape == ref.shape == (fe.frames(8000), 128) == (48, 128)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-3)  # log-mel, float32 FFT vs float64


def test_kaldi_fbank_rows_are_independent():
    wave = torch.from_numpy(demo_wave(16000)[:2 * 16000]).reshape(2, 16000)
    fe = KaldiFbank(window_type="povey", scale=2 ** 15)
    both = fe.fbank(wave)
    torch.testing.assert_close(both[1], fe.fbank(wave[1:])[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("n_fft, rate", sorted(BUNDLED_BIN_MELS))
@pytest.mark.parametrize("path", MKL_LOG_PATHS)
def test_bundled_bin_mels_are_torchs_on_each_mkl_path(n_fft, rate, path):
    """Each bundled set of bin mels is torch's float32 log on that MKL code path exactly (recomputed with MKL_CBWR set
    to it, where torch has MKL and this CPU runs that path), and within 2 ulp of every other set; the default set is
    torch's on this CPU."""
    bundled = kaldi_bin_mels(n_fft, rate, path)
    assert bundled.shape == (n_fft // 2,) and bundled.dtype == np.float32
    np.testing.assert_array_max_ulp(bundled, torch_bin_mels(n_fft, rate).numpy(), maxulp=2)
    if not torch.backends.mkl.is_available():
        return
    if path == mkl_log_path():
        np.testing.assert_array_equal(kaldi_bin_mels(n_fft, rate), torch_bin_mels(n_fft, rate).numpy())
    if MKL_LOG_PATHS.index(path) <= MKL_LOG_PATHS.index(mkl_log_path()):
        np.testing.assert_array_equal(bundled, under_reproducible_mkl(
            "from streamtag.models.frontends import torch_bin_mels", f"torch_bin_mels({n_fft}, {rate})", path.upper()))


INTEL_AVX512 = "vendor_id\t: GenuineIntel\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl\n"
INTEL_AVX2 = "vendor_id\t: GenuineIntel\nflags\t\t: fpu sse4_2 avx avx2 fma\n"
AMD_AVX512 = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl\n"


@pytest.mark.parametrize("cpuinfo, env, path", [
    (INTEL_AVX512, {}, "avx512"),
    (INTEL_AVX2, {}, "avx2"),
    ("vendor_id\t: GenuineIntel\nflags\t\t: fpu sse4_2 avx\n", {}, "compatible"),
    (AMD_AVX512, {}, "compatible"),  # MKL's fast paths are Intel's only
    ("", {}, "compatible"),  # no /proc/cpuinfo
    (INTEL_AVX512, {"MKL_CBWR": "COMPATIBLE"}, "compatible"),
    (INTEL_AVX512, {"MKL_CBWR": "AVX2,STRICT"}, "avx2"),
    (INTEL_AVX512, {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, "avx2"),
    (INTEL_AVX512, {"MKL_ENABLE_INSTRUCTIONS": "AVX512_E1"}, "avx512"),
    (INTEL_AVX2, {"MKL_CBWR": "AVX512"}, "avx2"),  # a setting never raises the CPU's own path
    (INTEL_AVX512, {"MKL_CBWR": "AUTO"}, "avx512"),
])
def test_mkl_log_path_follows_the_cpu_and_mkls_settings(cpuinfo, env, path):
    assert mkl_log_path(cpuinfo, env) == path
