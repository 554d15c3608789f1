import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtag.audio import RingBuffer, RingClosed


def test_wraps_around_and_reads_by_absolute_index():
    ring = RingBuffer(8)
    data = np.arange(20, dtype=np.float32)
    for i in range(0, 20, 3):
        ring.release(max(0, i - 4))
        ring.write(data[i:i + 3], block=False)
    assert ring.written == 20
    out, lost = ring.read(14, 6)
    assert lost == 0
    np.testing.assert_array_equal(out, data[14:20])


def test_overwrite_counts_unreleased_samples_and_zero_fills_them():
    ring = RingBuffer(10)
    ring.write(np.arange(10, dtype=np.float32), block=False)
    ring.release(3)  # reader consumed 0..2
    lost = ring.write(np.arange(10, 16, dtype=np.float32), block=False)  # evicts 0..5: 3..5 unread
    assert lost == 3 and ring.overwritten == 3
    out, lost = ring.read(4, 6)
    assert lost == 2  # samples 4 and 5 are gone
    np.testing.assert_array_equal(out, [0, 0, 6, 7, 8, 9])


def test_released_samples_are_not_counted_as_lost():
    ring = RingBuffer(4)
    for i in range(10):
        ring.release(i * 4)
        assert ring.write(np.ones(4, np.float32), block=False) == 0
    assert ring.overwritten == 0


def test_oversized_live_block_keeps_the_newest_samples():
    ring = RingBuffer(5)
    lost = ring.write(np.arange(12, dtype=np.float32), block=False)
    assert lost == 7
    out, _ = ring.read(7, 5)
    np.testing.assert_array_equal(out, np.arange(7, 12))


def test_blocking_write_waits_for_release_and_never_drops():
    ring = RingBuffer(6)
    data = np.arange(30, dtype=np.float32)
    writer = threading.Thread(target=lambda: (ring.write(data), ring.close()))
    writer.start()
    got = []
    pos = 0
    while pos < 30:
        assert ring.wait_for(pos + 1, timeout=2)
        n = ring.written - pos
        chunk, lost = ring.read(pos, n)
        assert lost == 0
        got.append(chunk)
        pos += n
        ring.release(pos)
    writer.join(2)
    np.testing.assert_array_equal(np.concatenate(got), data)
    assert ring.overwritten == 0


def test_abort_wakes_a_blocked_writer():
    ring = RingBuffer(4)
    ring.write(np.zeros(4, np.float32))
    errors = []

    def write():
        try:
            ring.write(np.zeros(4, np.float32))
        except RingClosed as e:
            errors.append(e)
    t = threading.Thread(target=write)
    t.start()
    time.sleep(0.05)
    ring.abort()
    t.join(1)
    assert not t.is_alive() and errors


def test_read_past_written_end_is_an_error():
    ring = RingBuffer(4)
    ring.write(np.zeros(3, np.float32))
    with pytest.raises(ValueError):
        ring.read(1, 3)


@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(1, 40), blocks=st.lists(st.integers(0, 60), min_size=1, max_size=30),
       keep=st.integers(0, 40))
def test_live_ring_returns_exactly_what_survives(capacity, blocks, keep):
    """Reading any range gives the stream's samples or zeros for exactly the overwritten ones."""
    ring = RingBuffer(capacity)
    stream = np.arange(sum(blocks), dtype=np.float32) + 1
    pos = 0
    for n in blocks:
        ring.write(stream[pos:pos + n], block=False)
        pos += n
    start = max(0, pos - capacity - keep)
    out, lost = ring.read(start, pos - start)
    gone = max(0, pos - capacity)  # every sample before this index was overwritten
    assert lost == max(0, gone - start)
    np.testing.assert_array_equal(out[lost:], stream[start + lost:pos])
    assert not out[:lost].any()
    assert ring.overwritten == max(0, pos - capacity)  # nothing was released
