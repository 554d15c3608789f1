"""Listen to a microphone and print an alarm whenever "Dog" passes a threshold.

    python demos/live_dog_alarm.py [--input NAME_OR_INDEX] [--threshold 0.4] [--duration 60]

`streamtag devices` lists the inputs. Results arrive on the dispatcher thread, in order; the
audio callback itself only copies samples, so a slow callback here never drops audio silently
(lost audio is counted and flagged on each affected window).
"""
import argparse
import time

import streamtag
from streamtag.audio.microphone import MicrophoneSource


def main() -> None:
    streamtag.show_warnings_as_lines()  # streamtag's notices as one line each, as the CLI prints them
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default=None)
    ap.add_argument("--threshold", type=float, default=0.4)
    ap.add_argument("--duration", type=float, default=60.0)
    args = ap.parse_args()

    tagger = streamtag.Tagger(None, window=1.0, hop=0.5)  # default model (bundled mn04_as offline)
    dog = tagger.labels.index("Dog")

    @tagger.subscribe
    def alarm(r: streamtag.WindowResult) -> None:
        if r.scores[dog] >= args.threshold:
            print(f"DOG at {r.start_s:.1f}s (score {r.scores[dog]:.2f}, latency {r.latency_s * 1e3:.0f} ms)")
        if r.lossy:
            print(f"(window {r.index} lost {r.lost_samples} samples)")

    mic = MicrophoneSource(args.input)
    tagger.warm_up()
    tagger.start(mic)
    try:
        time.sleep(args.duration)
    except KeyboardInterrupt:
        pass
    mic.close()  # the last windows are still published
    tagger.join()
    print(tagger.stats)


if __name__ == "__main__":
    main()
