"""The numpy EfficientAT front-end (`mel.NumpyEfficientATMel`) against the torch one, built from the same settings.

Two float32 STFTs from different FFT libraries cannot agree to the last bit: on real audio torch's own
float32 log-mel is up to 1.7e-5 from a float64 computation (low-energy bins), and numpy's 1.5e-5. So
the elementwise bound is MAX_TOL (below the goldens' MEL_TOL) and the mean is held to MEAN_TOL; the
numpy front-end's shared-frames path equals its per-window path within SHARED_TOL, as the torch one's.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtag.models import get_spec
from streamtag.models.frontends import EfficientATMel
from streamtag.models.mel import EfficientATMelSettings, FrameCache, NumpyEfficientATMel, mel_groups
from tests.helpers import CLIP32, demo_wave, under_reproducible_mkl

MAX_TOL, MEAN_TOL, SHARED_TOL = 3e-5, 1e-6, 1e-6
MODELS = ("mn04_as", "mn10_as_hop_15", "mn10_as_mels_64", "dymn04_as")


@pytest.fixture(scope="module")
def wave():
    return demo_wave(32000)  # the demo clip (speech, then a dog) at 32 kHz


def both(name):
    config = get_spec(name).config
    return config.frontend(), config.numpy_frontend()


def torch_mels(frontend, rows):
    with torch.inference_mode():
        return frontend(torch.from_numpy(np.ascontiguousarray(rows))).numpy()


def windows_of(wave, count, step, window):
    span = np.pad(wave, (0, max(0, (count - 1) * step + window - len(wave))))[:(count - 1) * step + window]
    return span, np.stack([span[k * step:k * step + window] for k in range(count)])


@pytest.fixture(scope="module")
def reproducible_torch_banks():
    """Each model's torch and numpy front-end banks, built where MKL takes its reproducible path (None: torch has no
    MKL)."""
    if not torch.backends.mkl.is_available():
        return None
    stacked = under_reproducible_mkl("from streamtag.models import get_spec", "np.concatenate("
                                     f"[get_spec(n).config.frontend().mel_basis.numpy() for n in {MODELS!r}] + "
                                     f"[get_spec(n).config.numpy_frontend().mel_basis_t.T for n in {MODELS!r}])")
    rows = np.cumsum([get_spec(n).config.mel_settings().n_mels for n in MODELS * 2])[:-1]
    banks = np.split(stacked, rows)
    return {name: (banks[i], banks[i + len(MODELS)]) for i, name in enumerate(MODELS)}


@pytest.mark.parametrize("name", MODELS)
def test_both_front_ends_come_from_the_family_config(name, reproducible_torch_banks):
    torch_fe, numpy_fe = both(name)
    assert torch_fe.settings == numpy_fe.settings == get_spec(name).config.mel_settings()
    # the same bank: bit for bit from the same log, torch's on this CPU (the bundled bins of this CPU's MKL path) and
    # MKL's reproducible path's (the goldens'); the paths differ by up to 2 ulp in some bins, 1.8e-5 in the bank
    np.testing.assert_allclose(numpy_fe.mel_basis_t.T, torch_fe.mel_basis.numpy(), rtol=0, atol=2e-5)
    if reproducible_torch_banks is not None:
        np.testing.assert_array_equal(numpy_fe.mel_basis_t.T, torch_fe.mel_basis.numpy())
        torch_bank, numpy_bank = reproducible_torch_banks[name]
        np.testing.assert_array_equal(numpy_bank, torch_bank)
    left = (torch_fe.n_fft - torch_fe.win_length) // 2  # torch's float32 cos and numpy's differ in the last bit
    np.testing.assert_allclose(numpy_fe.window[left:left + torch_fe.win_length], torch_fe.window.numpy(), rtol=0,
                               atol=1e-7)


def test_default_settings_are_the_torch_front_ends_defaults():
    assert EfficientATMel().settings == EfficientATMelSettings()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("window, step, count", [
    (320000, 80000, 2), (32000, 16000, 20), (32000, 32000, 6), (48000, 9600, 5), (16000, 4800, 7), (1280, 640, 4),
])
def test_numpy_mels_match_torch_on_real_audio(name, window, step, count, wave):
    torch_fe, numpy_fe = both(name)
    if step % torch_fe.hop_length:
        step = step // torch_fe.hop_length * torch_fe.hop_length
    span, rows = windows_of(wave, count, step, window)
    expected = torch_mels(torch_fe, rows)
    for got in (numpy_fe(rows), numpy_fe.windows(span, count, step, window)
                if numpy_fe.can_share_frames(window, step) else numpy_fe(rows)):
        assert got.shape == expected.shape == (count, 1, torch_fe.n_mels, torch_fe.frames(window))
        assert got.dtype == np.float32
        diff = np.abs(got - expected)
        assert diff.max() <= MAX_TOL and diff.mean() <= MEAN_TOL


def test_numpy_mels_match_torch_on_the_golden_clip():
    import soundfile as sf
    torch_fe, numpy_fe = both("mn04_as")
    rows = sf.read(CLIP32, dtype="float32")[0][None, :32000]
    diff = np.abs(numpy_fe(rows) - torch_mels(torch_fe, rows))
    assert diff.max() <= MAX_TOL and diff.mean() <= MEAN_TOL


@settings(max_examples=25, deadline=None)
@given(window_frames=st.integers(4, 120), step_frames=st.integers(1, 60), count=st.integers(2, 6),
       offset=st.integers(0, 300000))
def test_shared_frames_equal_per_window_numpy_mels(window_frames, step_frames, count, offset):
    """Any window of at least the shared interior, any frame-aligned step: shared frames change nothing."""
    fe = NumpyEfficientATMel(EfficientATMelSettings())
    window, step = window_frames * fe.hop_length + 1153 - 4 * fe.hop_length, step_frames * fe.hop_length
    if not fe.can_share_frames(window, step):
        return
    wave = demo_wave(32000)[offset:]
    span, rows = windows_of(wave, count, step, window)
    shared = fe.windows(span, count, step, window)
    each = fe(rows)
    assert shared.shape == each.shape
    np.testing.assert_array_equal(shared, each)  # every frame is computed alone, in float64 up to the mel energies


@settings(max_examples=25, deadline=None)
@given(window_frames=st.integers(4, 120), step_frames=st.integers(1, 60),
       batches=st.lists(st.tuples(st.integers(1, 5), st.integers(-2, 3)), min_size=1, max_size=6))
def test_a_frame_cache_shares_frames_between_batches_of_a_stream(window_frames, step_frames, batches):
    """Batches of a stream (mostly consecutive; some skip windows or go back) through one FrameCache: each equals
    its windows computed alone, bit for bit."""
    fe = NumpyEfficientATMel(EfficientATMelSettings())
    window, step = window_frames * fe.hop_length + 1153 - 4 * fe.hop_length, step_frames * fe.hop_length
    if not fe.can_share_frames(window, step):
        return
    wave = np.pad(demo_wave(32000), (0, 40 * step + window))
    cache, k = FrameCache(), 0
    for count, jump in batches:
        k = max(0, k + jump)  # 0: the next batch follows on; else windows skipped (live) or repeated
        start = k * step
        span, rows = windows_of(wave[start:], count, step, window)
        np.testing.assert_array_equal(fe.windows(span, count, step, window, start, cache), fe(rows))
        k += count


def test_silence_gives_the_floor():
    fe = NumpyEfficientATMel(EfficientATMelSettings())
    s = fe.settings
    np.testing.assert_allclose(fe(np.zeros((1, 32000), np.float32)), (np.log(np.float32(s.log_offset)) + s.shift)
                               / s.scale, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [1, 5, 8, 200])
def test_mel_groups_hold_every_nonzero_of_the_bank(name, size):
    """The grouped bank the numpy front-end multiplies by rebuilds the whole bank, bit for bit."""
    bank = get_spec(name).config.numpy_frontend().mel_basis_t.T[:, :-1]  # without the zero Nyquist column
    rebuilt = np.zeros(bank.shape, np.float64)
    groups = mel_groups(bank, size)
    assert [(g.lo, g.hi) for g in groups] == [(lo, min(lo + size, len(bank))) for lo in range(0, len(bank), size)]
    for g in groups:
        rebuilt[g.lo:g.hi, g.start:g.stop] = g.weights
    np.testing.assert_array_equal(rebuilt, bank)
