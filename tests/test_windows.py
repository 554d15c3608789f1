import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamtag.errors import ConfigError
from streamtag.windows import WindowScheduler, WindowSpec


@pytest.mark.parametrize("window_s, hop_s, rate, W, H", [
    (10.0, 2.5, 32000, 320000, 80000), (1.0, 0.5, 32000, 32000, 16000), (0.96, 0.48, 16000, 15360, 7680),
    (1.0, 2.0, 32000, 32000, 64000),  # hop > window is allowed
    (0.01, 0.01, 32000, 320, 320),  # one STFT hop
])
def test_seconds_convert_once_with_rounding(window_s, hop_s, rate, W, H):
    spec = WindowSpec.from_seconds(window_s, hop_s, rate, min_samples=320)
    assert (spec.window, spec.hop) == (W, H)


@pytest.mark.parametrize("window_s, hop_s, message", [
    (0, 1, "window must be > 0"), (1, 0, "hop must be > 0"), (1, -1, "hop must be > 0"),
    (float("nan"), 1, "finite"), (1, float("inf"), "finite"), (0.005, 0.005, "shorter than one model frame"),
    (1, 0.001, "hop 0.001 s is shorter"),
])
def test_bad_window_or_hop_is_refused(window_s, hop_s, message):
    with pytest.raises(ConfigError, match=message):
        WindowSpec.from_seconds(window_s, hop_s, 32000, min_samples=320)


# EATagger counts: 12.3 s at 32 kHz -> 24 windows (1 s / 0.5 s), 2 windows (10 s / 2.5 s)
@pytest.mark.parametrize("n, W, H, total", [
    (0, 10, 5, 0), (1, 10, 5, 1), (10, 10, 5, 1), (11, 10, 5, 2), (15, 10, 5, 2), (16, 10, 5, 3),
    (393600, 32000, 16000, 24), (393600, 320000, 80000, 2), (12800, 32000, 16000, 1),
    (278400, 320000, 80000, 1), (100, 10, 30, 4),
    # hop > window: no window may start at or after the end (12.5 s clip, 10 s windows, 20 s hop: one)
    (125, 100, 200, 1), (200, 100, 200, 1), (201, 100, 200, 2), (400, 100, 200, 2), (401, 100, 200, 3),
])
def test_total_windows_of_a_finished_stream(n, W, H, total):
    assert WindowSpec(W, H, 1).total(n) == total


@given(n=st.integers(1, 2000), W=st.integers(1, 300), H=st.integers(1, 300))
def test_every_window_starts_inside_the_audio_and_the_audio_is_covered_up_to_gaps(n, W, H):
    spec = WindowSpec(W, H, 1)
    k = spec.total(n)
    assert k >= 1 and spec.start(k - 1) < n
    if H <= W:  # the EATagger count: the last window reaches the end
        assert spec.end(k - 1) >= n and (k == 1 or spec.end(k - 2) < n)
    else:  # hop > window: the next window would start at or after the end
        assert spec.start(k) >= n


@pytest.mark.parametrize("available, due", [(0, 0), (9, 0), (10, 1), (14, 1), (15, 2), (40, 7)])
def test_window_is_due_when_its_last_sample_arrives(available, due):
    assert WindowSpec(10, 5, 1).due(available) == due


def test_times_are_nominal_and_absolute():
    spec = WindowSpec(32000, 16000, 32000)
    assert spec.times(23) == (11.5, 12.5)


@given(n=st.integers(1, 400), W=st.integers(1, 50), H=st.integers(1, 50), B=st.integers(1, 9),
       grid=st.booleans(), arrivals=st.lists(st.integers(0, 60), max_size=40))
def test_scheduler_hands_out_every_window_once_in_order(n, W, H, B, grid, arrivals):
    spec = WindowSpec(W, H, 1)
    sched = WindowScheduler(spec, B, grid=grid)
    got, avail = [], 0
    for a in arrivals:
        avail = min(n, avail + a)
        ks = sched.take(avail, ended=False)
        assert all(spec.end(k) <= avail for k in ks)  # only complete windows while streaming
        if grid and len(ks):
            assert len(ks) == B and ks[0] % B == 0
        got.extend(ks)
    while True:
        ks = sched.take(n, ended=True)
        if not ks:
            break
        got.extend(ks)
    assert got == list(range(spec.total(n)))
