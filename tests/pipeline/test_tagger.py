"""The streaming pipeline: block-size invariance, ordering, subscriber isolation, errors and shutdown."""
import threading
import time

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamtag import ArraySource, Tagger
from streamtag.errors import ConfigError
from streamtag.models import Network
from tests.helpers import CLIP44, DEMO_CLIP, LABELS_CSV, MN04_GOLDEN, load_npz

WAVE44 = sf.read(DEMO_CLIP, dtype="float32")[0]  # 12.5 s, 44.1 kHz stereo: 24 windows of 1 s / 0.5 s


def collect(tagger, feed_blocks, rate):
    got = []
    tagger.subscribe(got.append)
    with tagger:
        for block in feed_blocks:
            tagger.feed(block, rate)
    tagger.unsubscribe(got.append)
    return got


@pytest.fixture(scope="module")
def reference_44k(mn04):
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu", batch_size=4)
    return list(t.tag_array(WAVE44, 44100))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, 60000), min_size=1, max_size=15))
def test_any_block_sizes_give_identical_results(cuts, mn04, reference_44k):
    bounds = np.cumsum([0] + cuts)
    bounds = np.unique(np.clip(np.append(bounds, len(WAVE44)), 0, len(WAVE44)))
    blocks = [WAVE44[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu", batch_size=4)
    got = collect(t, blocks, 44100)
    assert [r.index for r in got] == [r.index for r in reference_44k]
    for a, b in zip(got, reference_44k):
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.embedding, b.embedding)


def test_pushed_audio_matches_the_file_goldens(mn04):
    g = load_npz(MN04_GOLDEN)
    pushed = list(Tagger(mn04, window=1.0, hop=0.5, device="cpu").tag_array(sf.read(CLIP44, dtype="float32")[0], 44100))
    n = len(g["stereo44k_w1_scores"])
    assert np.abs(np.stack([r.scores for r in pushed[:n]]) - g["stereo44k_w1_scores"]).max() <= 1e-4


def test_pushed_audio_equals_the_file_read(mn04, reference_44k):
    from_file = list(Tagger(mn04, window=1.0, hop=0.5, device="cpu", batch_size=4).tag_file(DEMO_CLIP))
    assert len(from_file) == len(reference_44k) == 24
    for a, b in zip(from_file, reference_44k):
        np.testing.assert_array_equal(a.scores, b.scores)


def test_results_are_frozen_and_carry_times_model_and_top(reference_44k):
    r = reference_44k[3]
    assert (r.index, r.start_sample, r.end_sample, r.start_s, r.end_s) == (3, 48000, 80000, 1.5, 2.5)
    assert r.model == "mn04_as" and r.scores.shape == (527,) and r.embedding.shape == (384,)
    top = r.top(3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
    assert top[0][0] == r.labels.names[int(np.argmax(r.scores))]
    with pytest.raises(AttributeError):
        r.index = 5


def test_a_failing_subscriber_does_not_stop_the_others(mn04, caplog):
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu")
    seen_a, seen_b = [], []

    def bad(r):
        raise RuntimeError("subscriber bug")
    t.subscribe(seen_a.append)
    t.subscribe(bad)
    t.subscribe(seen_b.append)
    stats = t.run(ArraySourceOf(WAVE44, 44100))
    assert len(seen_a) == len(seen_b) == 24
    assert stats.subscriber_errors == 24 and stats.windows == 24
    assert "subscriber bug" in caplog.text


def ArraySourceOf(samples, rate):
    src = ArraySource(rate)
    threading.Thread(target=lambda: (src.feed(samples, rate), src.end()), daemon=True).start()
    return src


class Faulty(Network):
    """Wraps a network: sleeps `delay` s per call and raises on call `fail_at` (a test hook)."""

    freezable = False

    def __init__(self, inner, fail_at=None, delay=0.0):
        super().__init__()
        self.inner, self.fail_at, self.delay, self.calls = inner, fail_at, delay, 0

    def forward(self, mel):
        self.calls += 1
        time.sleep(self.delay)
        if self.calls == self.fail_at:
            raise RuntimeError("model exploded")
        return self.inner(mel)


def faulty_tagger(mn04, batch_size, **kw):
    from streamtag.models import SingleModel
    model = SingleModel(mn04.spec, mn04.frontend, Faulty(mn04.network, **kw))
    return Tagger(model, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu", batch_size=batch_size,
                  optimize=False, ring_seconds=2.0)


class Shuffled(Network):
    """Wraps a network: each call sleeps a pseudo-random 0-30 ms, so concurrent calls finish out of order."""

    freezable = False

    def __init__(self, inner):
        super().__init__()
        self.inner, self.rng, self.lock = inner, np.random.default_rng(7), threading.Lock()

    def forward(self, mel):
        with self.lock:
            delay = float(self.rng.uniform(0.0, 0.03))
        time.sleep(delay)
        return self.inner(mel)


@pytest.mark.parametrize("network_threads", [1, 3])
def test_results_keep_window_order_whatever_order_the_network_threads_finish_in(network_threads, mn04):
    from streamtag.models import SingleModel

    def run(pipelined):
        model = SingleModel(mn04.spec, mn04.frontend, Shuffled(mn04.network))
        t = Tagger(model, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu", batch_size=2, optimize=False)
        t.runner.pipelined = pipelined  # False: the worker runs each network itself, in order (as on CUDA)
        t.runner.network_threads = network_threads  # as a runner with that many OpenVINO streams declares
        return list(t.tag_array(WAVE44, 44100))
    got, sequential = run(True), run(False)
    assert [r.index for r in got] == [r.index for r in sequential] == list(range(24))
    for a, b in zip(got, sequential):
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.embedding, b.embedding)
        assert (a.start_sample, a.end_sample, a.lost_samples) == (b.start_sample, b.end_sample, b.lost_samples)


@pytest.mark.parametrize("network_threads", [1, 3])
def test_model_error_reaches_the_iterator_and_stops_all_threads(network_threads, mn04):
    t = faulty_tagger(mn04, 2, fail_at=2)
    t.runner.network_threads = network_threads
    before = threading.active_count()
    got = []
    with pytest.raises(RuntimeError, match="model exploded"):
        for r in t.tag_file(DEMO_CLIP):
            got.append(r)
    assert [r.index for r in got] == ([0, 1] if network_threads == 1 else [0, 1][:len(got)])
    deadline = time.monotonic() + 3
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


def test_results_finished_before_a_model_error_are_published_not_dropped(mn04):
    # batch 0 is held in a slow subscriber while batch 1's result waits in the queue and batch 2's network fails:
    # batch 1 must still reach the subscribers (and the iterator) before the error
    t = faulty_tagger(mn04, 1, fail_at=3)
    slow = threading.Event()

    def cb(r):
        if not slow.is_set():
            slow.set()
            time.sleep(0.5)
    t.subscribe(cb)
    got = []
    with pytest.raises(RuntimeError, match="model exploded"):
        for r in t.tag_file(DEMO_CLIP):
            got.append(r)
    assert [r.index for r in got] == [0, 1]


def test_stop_from_a_subscriber_is_safe_and_idempotent(mn04):
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu", batch_size=2)
    got = []

    def cb(r):
        got.append(r)
        if r.index == 3:
            t.stop()
            t.stop()
    t.subscribe(cb)
    t.start(ArraySourceOf(np.tile(WAVE44, (20, 1)), 44100))
    assert t.join(timeout=10)
    t.stop()
    assert 4 <= len(got) < 100


def test_closing_the_iterator_early_stops_the_run(mn04):
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu", batch_size=2)
    it = t.tag_array(np.tile(WAVE44, (50, 1)), 44100)
    first = [next(it) for _ in range(3)]
    it.close()
    assert [r.index for r in first] == [0, 1, 2]
    assert t.join(timeout=5)
    # the Tagger can run again afterwards
    assert len(list(t.tag_file(DEMO_CLIP))) == 24


def test_file_source_is_never_dropped_behind_a_slow_subscriber(mn04):
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu", batch_size=1)
    got = []
    t.subscribe(lambda r: (time.sleep(0.01), got.append(r.index)))
    stats = t.run(__import__("streamtag").FileSource(DEMO_CLIP))
    assert got == list(range(24)) and stats.lost_samples == 0 and stats.lossy_windows == 0


def test_live_source_counts_overwritten_audio_in_windows_and_stats(mn04):
    """A slowed model with a small live ring: loss is counted, never silent."""
    t = faulty_tagger(mn04, 1, delay=0.2)
    got = []
    t.subscribe(got.append)
    t.start(live=True)
    for i in range(0, 32000 * 8, 3200):  # 8 s pushed much faster than real time
        t.feed(np.full(3200, 0.01, np.float32), 32000)
    t.end()
    t.join(timeout=30)
    stats = t.stats
    assert stats.lost_samples > 0
    assert sum(r.lossy for r in got) == stats.lossy_windows > 0
    assert all(r.lost_samples <= 32000 for r in got)
    assert all(r.latency_s is not None and r.latency_s >= 0 for r in got)


def test_slow_subscriber_on_a_live_source_loses_audio_visibly_not_silently(mn04):
    """Live sources never wait: a slow subscriber backs up the bounded queues and the ring, whose
    overwritten audio is counted per window and in the stats."""
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu", batch_size=1, ring_seconds=2.0)
    got = []
    t.subscribe(lambda r: (time.sleep(0.05), got.append(r)))
    t.start(live=True)
    for _ in range(0, 32000 * 20, 1600):  # 20 s pushed in ~no time
        t.feed(np.full(1600, 0.01, np.float32), 32000)
    t.end()
    assert t.join(timeout=60)
    assert t.stats.lost_samples > 0 and t.stats.lossy_windows == sum(r.lossy for r in got) > 0
    assert [r.index for r in got] == sorted(r.index for r in got)


def test_context_manager_push_stream_publishes_the_padded_tail(mn04):
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu")
    got = collect(t, [np.zeros(4000, np.float32)], 32000)  # 0.125 s: one zero-padded window
    assert [(r.index, r.start_s, r.end_s) for r in got] == [(0, 0.0, 1.0)]


def test_bad_arguments_raise_config_errors(mn04):
    with pytest.raises(ConfigError, match="hop must be > 0"):
        Tagger(mn04, window=1.0, hop=0, labels=LABELS_CSV)
    with pytest.raises(ConfigError, match="batch_size"):
        Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, batch_size=0)
    with pytest.raises(ConfigError, match="unknown device|unsupported device"):
        Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cuda")
