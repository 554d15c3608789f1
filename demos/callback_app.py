"""Embed streamtag in another app: the app owns its audio and pushes it; a callback reacts to tags.

    python demos/callback_app.py [path/to/audio]   (default: the demo clip beside this script)

Here the "app" reads its own audio in 20 ms chunks (as a recorder or a network stream would)
and feeds them to a Tagger; a subscriber is called on the dispatcher thread for every window.
"""
import sys
from pathlib import Path

import soundfile as sf

import streamtag


class DogAlarm:
    """A subscriber: any callable taking a WindowResult. Raises an alarm when a dog is heard."""

    def __init__(self, labels: streamtag.models.Labels, threshold: float = 0.4) -> None:
        self.dog = labels.index("Dog")
        self.threshold = threshold
        self.alarms = 0

    def __call__(self, result: streamtag.WindowResult) -> None:
        score = float(result.scores[self.dog])
        if score >= self.threshold:
            self.alarms += 1
            print(f"[alarm] dog at {result.start_s:.1f}-{result.end_s:.1f} s (score {score:.2f})")


def main() -> None:
    streamtag.show_warnings_as_lines()  # streamtag's notices as one line each, as the CLI prints them
    path = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("speech_dog_12s.flac")
    audio, rate = sf.read(path, dtype="float32")
    tagger = streamtag.Tagger("mn04_as", window=2.0, hop=1.0)
    alarm = tagger.subscribe(DogAlarm(tagger.labels))
    tagger.subscribe(lambda r: print(f"{r.start_s:5.1f}s  " + ", ".join(n for n, _ in r.top(3))))
    chunk = rate // 50  # 20 ms, as an audio callback would deliver
    with tagger:  # starts a push stream; leaving the block flushes the last windows and waits
        for i in range(0, len(audio), chunk):
            tagger.feed(audio[i:i + chunk], rate)
    print(f"{alarm.alarms} alarm(s); stats: {tagger.stats}")


if __name__ == "__main__":
    main()
