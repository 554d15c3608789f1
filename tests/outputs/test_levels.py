"""Window levels: dBFS RMS and A-weighted, against closed forms and IEC 61672's table."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtag.audio.levels import SILENCE_DB, a_weight_gain, mean_level, window_levels

RATE = 32000


def sine(freq, amp=1.0, n=RATE):
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / RATE)).astype(np.float32)


# IEC 61672-1 table 3: A-weighting in dB at nominal frequencies (rounded to 0.1 dB there)
@pytest.mark.parametrize("freq,a_db", [(100, -19.1), (250, -8.6), (500, -3.2), (1000, 0.0), (2000, 1.2),
                                       (4000, 1.0), (8000, -1.1)])
def test_a_weighting_matches_the_standard_table(freq, a_db):
    assert 10 * np.log10(a_weight_gain(np.array([freq]))[0]) == pytest.approx(a_db, abs=0.1)
    level, level_a = window_levels(sine(freq), np.array([0]), RATE, RATE)
    assert level[0] == pytest.approx(-3.0103, abs=1e-3)  # full-scale sine: -3.01 dBFS (square wave = 0)
    assert level_a[0] == pytest.approx(-3.0103 + 10 * np.log10(a_weight_gain(np.array([freq]))[0]), abs=0.05)


def test_silence_and_partial_windows():
    x = np.concatenate([np.zeros(RATE, np.float32), sine(1000, 0.5)])
    level, _ = window_levels(x, np.array([0, RATE]), RATE, RATE)
    assert level[0] == SILENCE_DB and level[1] == pytest.approx(20 * np.log10(0.5) - 3.0103, abs=1e-3)
    level, _ = window_levels(x, np.array([RATE]), RATE, RATE, valid=np.array([RATE // 2]))
    assert level[0] == pytest.approx(20 * np.log10(0.5) - 3.0103, abs=1e-2)
    assert mean_level([-10.0, -10.0]) == pytest.approx(-10.0) and mean_level([]) == SILENCE_DB


@settings(max_examples=30, deadline=None)
@given(gain_db=st.floats(-60, 0), seed=st.integers(0, 2**31))
def test_a_gain_shifts_both_levels_by_itself(gain_db, seed):
    x = (np.random.default_rng(seed).standard_normal(8000) * 0.1).astype(np.float64)
    base = window_levels(x, np.array([0]), 8000, RATE)
    scaled = window_levels(x * 10 ** (gain_db / 20), np.array([0]), 8000, RATE)
    assert scaled[0][0] - base[0][0] == pytest.approx(gain_db, abs=1e-6)
    assert scaled[1][0] - base[1][0] == pytest.approx(gain_db, abs=1e-6)


def test_jsonl_and_npz_outputs_carry_each_windows_levels(tmp_path):
    import io
    import json

    from streamtag.outputs.sinks import JsonlSink, NpzSink
    from tests.outputs.monitor_helpers import demo_audio, tagger
    t = tagger()
    out = io.StringIO()
    jsonl, npz = JsonlSink(out, "demo"), NpzSink(tmp_path / "a.npz", t.labels)
    results = []
    for r in t.tag_array(demo_audio()[:3 * RATE], RATE):
        results.append(r)
        jsonl(r)
        npz(r)
    npz.close()
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["level_db"] for x in lines] == [round(r.level_db, 2) for r in results]
    z = np.load(tmp_path / "a.npz")
    np.testing.assert_array_equal(z["level_dba"], [r.level_dba for r in results])


def _stream_levels(x, window, hop, batch=4, valid_end=None):
    """StreamLevels over x as a stream reads it: batches of windows, each span from its first window's start."""
    from streamtag.audio.levels import StreamLevels
    meter = StreamLevels(window, hop, RATE)
    n = (len(x) - window) // hop + 1
    out = [[], []]
    for k0 in range(0, n, batch):
        ks = np.arange(k0, min(n, k0 + batch))
        s0 = int(ks[0] * hop)
        valid = np.full(len(ks), window) if valid_end is None else np.clip(valid_end - ks * hop, 1, window)
        a, b = meter.levels(x[s0:ks[-1] * hop + window], s0, ks * hop - s0, valid)
        out[0] += a.tolist()
        out[1] += b.tolist()
    return meter, np.array(out[0]), np.array(out[1]), np.arange(n) * hop


def _modulated_noise(seconds, seed=0):
    """White noise whose loudness changes every 0.3 s by up to 60 dB, a tone that comes and goes each second
    and a low hum: windows whose blocks differ widely."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    x = rng.standard_normal(n) * np.repeat(10 ** rng.uniform(-3, 0, n // 9600 + 1), 9600)[:n]
    x += 2 * np.sin(2 * np.pi * 440 * t) * (np.arange(n) // RATE % 2)
    return (x * 0.1 + 0.05 * np.sin(2 * np.pi * 60 * t)).astype(np.float32)


@pytest.mark.parametrize("window_s,hop_s,block_s,max_db", [
    (10, 2.5, 2.5, 0.002),  # the 10 s default: 2.5 s blocks
    (1, 0.5, 0.5, 0.02),    # the live default: 0.5 s blocks
    (2, 0.75, 0.25, 0.02),  # the shortest blocks taken
    (1, 0.3, 0.0, 0.0),     # gcd 0.1 s: too short, every window through its own spectrum
    (1, 1 / 3, 0.0, 0.0),   # gcd of a few samples: the same
])
def test_stream_levels_weigh_each_block_once_and_match_the_windows_own_spectra(window_s, hop_s, block_s, max_db):
    x = _modulated_noise(24)
    window, hop = int(window_s * RATE), int(hop_s * RATE)
    meter, rms, a_level, starts = _stream_levels(x, window, hop)
    assert meter.block == int(block_s * RATE)
    ref_rms, ref_a = window_levels(x, starts, window, RATE)
    np.testing.assert_allclose(rms, ref_rms, atol=1e-4)  # RMS is exact whatever the blocks
    assert np.abs(a_level - ref_a).max() <= max_db + 1e-9


def test_stream_levels_are_exact_on_a_tone_whole_in_each_block_and_on_windows_cut_by_the_end():
    x = sine(1000, 0.5, 30 * RATE)
    _, rms, a_level, starts = _stream_levels(x, 10 * RATE, RATE * 5 // 2)
    ref = window_levels(x, starts, 10 * RATE, RATE)
    np.testing.assert_allclose(a_level, ref[1], atol=1e-6)
    # windows past the end (valid < window) take their own spectrum, as window_levels of their valid part
    y = _modulated_noise(12, seed=3)
    end = len(y) - RATE // 3
    _, rms, a_level, starts = _stream_levels(y, 4 * RATE, RATE, valid_end=end)
    valid = np.clip(end - starts, 1, 4 * RATE)
    cut = valid < 4 * RATE
    assert cut.any()
    ref = window_levels(y, starts[cut], 4 * RATE, RATE, valid[cut])
    np.testing.assert_allclose(a_level[cut], ref[1], atol=1e-9)
    np.testing.assert_allclose(rms[cut], ref[0], atol=1e-4)


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 9), seed=st.integers(0, 2**31))
def test_stream_levels_do_not_depend_on_how_windows_are_batched(batch, seed):
    x = _modulated_noise(8, seed)
    one = _stream_levels(x, RATE, RATE // 2, batch=1)
    other = _stream_levels(x, RATE, RATE // 2, batch=batch)
    np.testing.assert_allclose(one[2], other[2], atol=1e-9)
