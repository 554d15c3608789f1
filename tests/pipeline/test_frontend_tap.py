"""The declared front-end hook: a `FrontEndSubscriber` gets each batch's audio and log-mel frames, and a failing one
never stops the stream."""
import numpy as np
import pytest

from streamtag.outputs.events import EventSettings
from streamtag.pipeline.dispatcher import FrontEndSubscriber
from streamtag.pipeline.tagger import Tagger
from streamtag.server.hub import SourceHub
from tests.helpers import LABELS_CSV, MN04_WEIGHTS


class Tap(FrontEndSubscriber):
    def __init__(self, fail=False):
        self.batches, self.windows, self.fail = [], [], fail

    def __call__(self, r):
        self.windows.append(r.index)

    def on_frontend(self, batch):
        if self.fail:
            raise RuntimeError("a tap's bug")
        self.batches.append((batch.start_sample, batch.audio.copy(), batch.first_frame,
                             None if batch.mel is None else batch.mel.copy()))


@pytest.fixture(scope="module")
def tagger():
    return Tagger("mn04_as", 1.0, 0.5, device="cpu", weights=str(MN04_WEIGHTS), labels=str(LABELS_CSV))


def test_taps_get_the_audio_and_contiguous_log_mel_frames(tagger):
    tap, bad = Tap(), Tap(fail=True)
    tagger.subscribe(tap)
    tagger.subscribe(bad)
    x = (0.1 * np.sin(2 * np.pi * 440 * np.arange(32000 * 5) / 32000)).astype(np.float32)
    results = list(tagger.tag_array(x, 32000))
    tagger.unsubscribe(tap)
    tagger.unsubscribe(bad)
    assert tap.windows == [r.index for r in results] == bad.windows
    starts = [b[0] for b in tap.batches]
    assert starts == sorted(starts) and tap.batches
    for start, audio, first, mel in tap.batches:
        np.testing.assert_array_equal(audio[:min(len(audio), len(x) - start)], x[start:start + len(audio)])
        assert mel is not None and mel.shape[0] == 128 and first is not None
    assert tagger.stats.subscriber_errors == len(tap.batches)


@pytest.mark.parametrize("amplitude", [1.0, 0.1, 0.01])
def test_the_hub_level_is_the_rms_of_each_windows_newest_hop_in_dbfs(amplitude, tagger):
    got = []
    hub = SourceHub("s", "file", "x", tagger.labels, lambda m: got.append(m), EventSettings(), 0.5, 1.0, "m")
    hub.begin_run(32000, 32000, 16000)
    x = (amplitude * np.sin(2 * np.pi * 1000 * np.arange(32000 * 4) / 32000)).astype(np.float32)
    tagger.subscribe(hub)
    try:
        list(tagger.tag_array(x, 32000))
    finally:
        tagger.unsubscribe(hub)
    levels = [m.payload[1] for m in got if m.kind == "window"]
    full = [lv for lv in levels[:-2] if lv is not None]  # the last windows are zero-padded
    assert full and all(abs(lv - 20 * np.log10(amplitude / np.sqrt(2))) < 0.05 for lv in full), levels
    assert any(m.kind == "mel" for m in got)
