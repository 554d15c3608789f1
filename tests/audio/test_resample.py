import numpy as np
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtag.audio import StreamResampler, expected_length


@pytest.mark.parametrize("n, rin, rout, expected", [
    (542430, 44100, 32000, 393600), (44100, 44100, 32000, 32000), (1, 48000, 32000, 1),
    (16000, 16000, 32000, 32000), (7, 8000, 32000, 28),
])
def test_expected_length_matches_librosa_rule(n, rin, rout, expected):
    assert expected_length(n, rin, rout) == expected


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(1, 5000), min_size=1, max_size=12),
       rates=st.sampled_from([(44100, 32000), (48000, 32000), (16000, 32000), (22050, 16000)]))
def test_streaming_equals_one_shot_for_any_block_sizes(cuts, rates):
    rin, rout = rates
    rng = np.random.default_rng(len(cuts))
    x = rng.standard_normal(sum(cuts)).astype(np.float32) * 0.1
    ref = soxr.resample(x, rin, rout, quality="HQ")
    ref = np.pad(ref, (0, max(0, expected_length(len(x), rin, rout) - len(ref))))[:expected_length(len(x), rin, rout)]
    r = StreamResampler(rin, rout)
    parts, pos = [], 0
    for n in cuts:
        parts.append(r.process(x[pos:pos + n]))
        pos += n
    parts.append(r.process(np.zeros(0, np.float32), last=True))
    y = np.concatenate(parts)
    np.testing.assert_array_equal(y, ref)


def test_same_rate_passes_through():
    x = np.arange(10, dtype=np.float32)
    r = StreamResampler(32000, 32000)
    np.testing.assert_array_equal(np.concatenate([r.process(x[:3]), r.process(x[3:], last=True)]), x)
