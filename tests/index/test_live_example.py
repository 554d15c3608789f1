"""Live query-by-example: events when the stream sounds like an example, with label events' hysteresis; through
a pushed array and through a real PulseAudio null sink."""
import importlib.util
import shutil
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from streamtag.errors import ConfigError
from streamtag.index import ExampleEvents, Examples, example_settings
from streamtag.outputs.events import EventSettings
from streamtag.pipeline.tagger import Tagger
from tests.conftest import NO_AUDIO_SERVER
from tests.helpers import ROOT

_spec = importlib.util.spec_from_file_location("train_own_head", ROOT / "demos" / "train_own_head.py")
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)
RATE = demo.RATE
ORDER = ("_background", "beep", "_background", "hiss", "_background", "click", "_background")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ex")
    rng = np.random.default_rng(3)
    sf.write(root / "beep.wav", demo.sound("beep", 2.0, rng), RATE)
    sf.write(root / "hiss.wav", demo.sound("hiss", 2.0, rng), RATE)
    stream = np.concatenate([demo.sound(k, 3.0, rng) for k in ORDER])
    sf.write(root / "stream.wav", stream, RATE)
    tagger = Tagger("mn04_as", window=1.0, hop=0.5, device="cpu")
    return root, tagger, stream


def _spans(kind):
    return [(3.0 * i, 3.0 * i + 3.0) for i, k in enumerate(ORDER) if k == kind]


def _inside(ev, spans, slack=1.0):
    return any(ev.onset_s >= a - slack and ev.offset_s <= b + slack for a, b in spans)


def test_events_fire_on_the_examples_sound_and_not_on_the_others(setup):
    root, tagger, stream = setup
    examples = Examples.from_files(tagger, [root / "beep.wav", root / "hiss.wav"])
    assert examples.names == ("beep", "hiss")
    events = []
    sub = ExampleEvents(examples, similarity=0.8, callback=events.append)
    for r in tagger.tag_array(stream, RATE):
        sub(r)
    sub.close(len(stream) / RATE)
    by = {n: [e for e in events if e.label == n] for n in examples.names}
    assert len(by["beep"]) == 1 and _inside(by["beep"][0], _spans("beep")), events
    assert len(by["hiss"]) == 1 and _inside(by["hiss"][0], _spans("hiss")), events
    assert all(e.mid.startswith("example:") and 0.8 <= e.peak <= 1 for e in events)


def test_example_events_use_the_label_events_hysteresis():
    s = example_settings(0.8, EventSettings(median=5, min_duration_s=1.0))
    assert (s.on, s.off, s.median, s.min_duration_s) == (0.8, pytest.approx(0.75), 5, 1.0)
    with pytest.raises(ConfigError, match="similarity threshold"):
        example_settings(1.5)
    with pytest.raises(ConfigError, match="names must differ"):
        Examples(("a", "a"), (np.ones((1, 4)), np.ones((1, 4))))


@pytest.fixture(scope="module")
def pulse():
    if not shutil.which("pulseaudio") or not shutil.which("paplay"):
        pytest.skip(f"{NO_AUDIO_SERVER} is not installed (Debian: pulseaudio pulseaudio-utils libportaudio2)")
    started = subprocess.run(["pactl", "info"], capture_output=True).returncode != 0
    if started:
        subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1", "-n",
                        "--load=module-null-sink sink_name=virt", "--load=module-native-protocol-unix"],
                       capture_output=True)
        for _ in range(50):
            if subprocess.run(["pactl", "info"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.skip(f"{NO_AUDIO_SERVER}: no server starts here")
    sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True).stdout
    if "virt" not in sinks:
        subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=virt"], capture_output=True)
    subprocess.run(["pactl", "set-default-source", "virt.monitor"], check=True)
    yield
    if started:
        subprocess.run(["pulseaudio", "--kill"], capture_output=True)


@pytest.mark.audio_device
def test_a_live_stream_through_pulseaudio_fires_on_the_example_only(pulse, setup):
    from streamtag.audio.microphone import MicrophoneSource
    root, tagger, stream = setup
    examples = Examples.from_files(tagger, [root / "beep.wav"])
    events = []
    sub = ExampleEvents(examples, similarity=0.8, callback=events.append)
    tagger.subscribe(sub)
    tagger.start(MicrophoneSource("pulse"), live=True)
    player = subprocess.Popen(["paplay", "--device=virt", str(root / "stream.wav")])
    player.wait(timeout=60)
    time.sleep(1.5)
    tagger.stop(wait=10)
    sub.close()
    tagger.unsubscribe(sub)
    beeps = [e for e in events if e.label == "beep"]
    assert len(beeps) == 1, events
    # the stream started before playback: the beep is the second 3 s chunk, give or take the start-up delay
    assert 2.0 <= beeps[0].onset_s <= 8.0 and beeps[0].duration_s <= 4.5, beeps
