"""stop() from a subscriber: no callback runs after it, not for the rest of the batch, not for other subscribers."""
from __future__ import annotations

import numpy as np

from streamtag import Tagger
from streamtag.audio import ArraySource
from tests.helpers import demo_wave


def test_no_callback_runs_after_a_subscriber_stops_the_run(mn04):
    tagger = Tagger(mn04, window=1.0, hop=0.5, batch_size=32)  # 32 windows per batch: a stop lands mid-batch
    seen: list[int] = []
    after: list[int] = []

    def stopper(r):
        seen.append(r.index)
        if r.index == 4:
            tagger.stop()

    tagger.subscribe(stopper)
    tagger.subscribe(lambda r: after.append(r.index))
    src = ArraySource()
    src.feed(demo_wave(32000), 32000)
    src.end()
    stats = tagger.run(src)
    assert seen == [0, 1, 2, 3, 4]
    assert after == [0, 1, 2, 3]  # the second subscriber does not get the window whose callback stopped the run
    assert stats.windows == 5


def test_without_a_stop_every_window_reaches_every_subscriber(mn04):
    tagger = Tagger(mn04, window=1.0, hop=0.5, batch_size=32)
    a: list[int] = []
    b: list[int] = []
    tagger.subscribe(lambda r: a.append(r.index))
    tagger.subscribe(lambda r: b.append(r.index))
    src = ArraySource()
    src.feed(demo_wave(32000), 32000)
    src.end()
    tagger.run(src)
    n = len(a)
    assert n > 20 and a == b == list(np.arange(n))


def test_a_push_stream_left_open_is_named_with_the_way_to_end_it(mn04):
    import pytest

    from streamtag.errors import ConfigError
    tagger = Tagger(mn04, window=1.0, hop=0.5)
    tagger.feed(demo_wave(32000)[:32000], 32000)  # no `with tagger:`: a push stream starts and stays open
    with pytest.raises(ConfigError, match=r"call end\(\) and join\(\) after the last feed\(\)"):
        list(tagger.tag_array(np.zeros(16000, np.float32), 32000))
    tagger.end()
    assert tagger.join(timeout=30)
    assert len(list(tagger.tag_array(np.zeros(32000, np.float32), 32000))) == 1  # idle again
