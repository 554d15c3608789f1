"""Running a Monitor over known audio, for the detection-output tests."""
from __future__ import annotations

import time

import numpy as np
import soundfile as sf

from streamtag import Tagger
from streamtag.audio.resample import StreamResampler
from tests.helpers import DEMO_CLIP, LABELS_CSV, MN04_WEIGHTS

RATE = 32000


def tagger() -> Tagger:
    return Tagger("mn04_as", window=1, hop=0.5, weights=str(MN04_WEIGHTS), labels=str(LABELS_CSV), device="cpu")


def demo_audio() -> np.ndarray:
    """The demo clip (speech, then a dog) as float32 mono at the model rate: what the clip buffer receives."""
    x, sr = sf.read(str(DEMO_CLIP), dtype="float32", always_2d=True)
    mono = x.mean(axis=1).astype(np.float32)
    r = StreamResampler(sr, RATE)
    return r.process(mono, last=True)


def run(t: Tagger, audio: np.ndarray, monitor, live: bool = False, speed: float = 4.0, on_window=None):
    """Tag `audio` (model rate) with `monitor` subscribed; live: pushed in 0.1 s blocks at `speed` x real time.
    Returns (results, stats)."""
    results = []
    sub = t.subscribe(lambda r: results.append(r))
    mon = t.subscribe(monitor)
    try:
        if not live:
            for _ in t.tag_array(audio, RATE):
                pass
            stats = t.stats
        else:
            t.warm_up()
            t.start(live=True)
            block, t0 = RATE // 10, time.monotonic()
            for k, i in enumerate(range(0, len(audio), block)):
                t.feed(audio[i:i + block], RATE)
                if on_window is not None:
                    on_window(i / RATE)
                delay = t0 + (k + 1) * 0.1 / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            t.end()
            t.join()
            stats = t.stats
    finally:
        sub.unsubscribe()
        mon.unsubscribe()
    close = getattr(monitor, "close", None)
    if close is not None:
        close(len(audio) / RATE)
    return results, stats
