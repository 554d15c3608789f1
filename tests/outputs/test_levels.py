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
