"""The event state machine on synthetic score sequences, and on the real 60 s mix."""
import csv

import numpy as np
import pytest

from streamtag.models import load_labels
from streamtag.outputs.events import EventDetector, EventSettings
from streamtag.pipeline.result import WindowResult
from tests.helpers import LONG_MIX, needs_shared

LABELS = load_labels()
DOG = LABELS.index("Dog")


def windows(dog_scores, window=1.0, hop=0.5):
    out = []
    for k, sc in enumerate(dog_scores):
        scores = np.zeros(527, np.float32)
        scores[DOG] = sc
        out.append(WindowResult(k, 0, 0, k * hop, k * hop + window, scores, np.zeros(4, np.float32), "m", LABELS))
    return out


def detect(dog_scores, **kw):
    det = EventDetector(LABELS, EventSettings(labels=(DOG,), **kw), hop_s=0.5)
    events = [e for r in windows(dog_scores) for e in det.update(r)]
    return events + det.flush()


@pytest.mark.parametrize("scores, settings, expected", [
    # overlapping windows above threshold: one event over the windows' central slices
    ([0, 0.9, 0.9, 0.9, 0], dict(median=1, min_duration_s=0), [(0.75, 2.25)]),
    # hysteresis: stays open down to `off`
    ([0, 0.5, 0.2, 0.2, 0.5, 0], dict(on=0.4, off=0.15, median=1, min_duration_s=0), [(0.75, 2.75)]),
    # below off closes; reopening within max_gap merges, beyond it does not
    # (the first window stands for time from 0, the last one up to its end)
    ([0.5, 0, 0, 0.5], dict(on=0.4, off=0.3, median=1, min_duration_s=0, max_gap_s=1.0), [(0.0, 2.5)]),
    ([0.5, 0, 0, 0, 0, 0.5], dict(on=0.4, off=0.3, median=1, min_duration_s=0, max_gap_s=1.0),
     [(0.0, 0.75), (2.75, 3.5)]),
    # too short
    ([0, 0.9, 0], dict(median=1, min_duration_s=1.0), []),
    # a one-window spike is removed by a 3-window median; a plateau survives it
    ([0, 0, 0.9, 0, 0], dict(median=3, min_duration_s=0), []),
    ([0, 0.9, 0.9, 0.9, 0.9, 0], dict(median=3, min_duration_s=0), [(0.75, 2.75)]),
    # open at the end of the stream: closed by flush, at the last window's end
    ([0, 0.9, 0.9], dict(median=1, min_duration_s=0), [(0.75, 2.0)]),
])
def test_event_rules(scores, settings, expected):
    assert [(e.onset_s, e.offset_s) for e in detect(scores, **settings)] == expected


@pytest.mark.parametrize("window, hop, audio_s, expected", [
    (10.0, 2.5, 12.5, [(0.0, 12.5)]),  # the demo's default windows: the whole clip, not 3.75-8.75
    (10.0, 2.5, 11.0, [(0.0, 11.0)]),  # the last window runs past the audio: the event does not
    (1.0, 1.0, 5.0, [(0.0, 5.0)]),  # hop = window
    (1.0, 0.5, 5.0, [(0.0, 5.0)]),  # hop < window
    (1.0, 2.0, 5.0, [(0.0, 5.0)]),  # hop > window: 1 s gaps between the cores, merged (max gap 1 s)
    (1.0, 0.5, 0.4, [(0.0, 0.4)]),  # shorter than one window: one padded window
    (10.0, 2.5, None, [(0.0, 12.5)]),  # audio length unknown: up to the last window's end
])
def test_a_sound_present_throughout_gives_one_event_over_the_whole_recording(window, hop, audio_s, expected):
    n = 1 if audio_s is not None and audio_s <= window else max(1, int(np.ceil(((audio_s or 12.5) - window) / hop)) + 1)
    n = min(n, int(np.ceil((audio_s or 12.5) / hop)))
    det = EventDetector(LABELS, EventSettings(labels=(DOG,), median=3, min_duration_s=0), hop_s=hop)
    events = [e for r in windows([0.9] * n, window, hop) for e in det.update(r)] + det.flush(audio_s)
    assert [(e.onset_s, e.offset_s) for e in events] == expected


@pytest.mark.parametrize("starts, ends, audio_s, edges", [
    ([0.0, 2.5], [10.0, 12.5], 12.5, [0.0, 6.25, 12.5]),
    ([0.0, 0.5, 1.0], [1.0, 1.5, 2.0], 1.8, [0.0, 0.75, 1.25, 1.8]),
    ([0.0, 2.0, 4.0], [1.0, 3.0, 5.0], 5.0, [0.0, 2.0, 4.0, 5.0]),
    ([0.0], [1.0], 0.4, [0.0, 0.4]),
    ([0.0], [1.0], None, [0.0, 1.0]),
])
def test_plot_tiles_are_the_slices_the_events_use(starts, ends, audio_s, edges):
    from streamtag.outputs.plot import window_tiles
    np.testing.assert_allclose(window_tiles(np.array(starts), np.array(ends), audio_s), edges)


def test_event_fields_and_open_callback():
    opened = []
    det = EventDetector(LABELS, EventSettings(labels=(DOG,), median=1, min_duration_s=0),
                        on_open=lambda label, t: opened.append((label, t)), hop_s=0.5)
    events = [e for r in windows([0.1, 0.6, 0.8, 0.1]) for e in det.update(r)] + det.flush()
    (e,) = events
    assert (e.label, e.mid, e.first_window, e.last_window) == ("Dog", "/m/0bt9lr", 1, 2)
    assert e.peak == pytest.approx(0.8) and e.mean == pytest.approx(0.7)
    assert opened == [("Dog", 0.75)]
    det.reset()
    assert det.flush() == []


def test_settings_are_validated():
    with pytest.raises(ValueError, match="off <= on"):
        EventSettings(on=0.2, off=0.5)
    with pytest.raises(ValueError, match="odd"):
        EventSettings(median=2)


@needs_shared
def test_long_mix_events_follow_the_timeline_once_per_source(mn04):
    from streamtag import Tagger
    results = list(Tagger(mn04, window=1.0, hop=0.5, labels=LABELS).tag_file(LONG_MIX))
    det = EventDetector(LABELS)
    events = [e for r in results for e in det.update(r)] + det.flush()
    for seg in csv.DictReader(open(LONG_MIX.with_suffix(".timeline.csv"))):
        onset, offset = float(seg["onset_s"]), float(seg["offset_s"])
        for name in seg["label"].split(";"):
            hits = [e for e in events if e.label == name and e.offset_s > onset and e.onset_s < offset]
            assert len(hits) <= 1, (name, hits)  # never once per window
        main_hits = [e for e in events if e.label in seg["label"].split(";")
                     and e.offset_s > onset and e.onset_s < offset]
        assert main_hits, seg["label"]
    # nothing is detected where nothing plays (gaps and file ends), beyond 0.5 s of a segment
    segs = [(float(s["onset_s"]), float(s["offset_s"])) for s in csv.DictReader(open(LONG_MIX.with_suffix(
        ".timeline.csv")))]
    for e in events:
        assert any(e.onset_s < b + 0.5 and e.offset_s > a - 0.5 for a, b in segs), e
