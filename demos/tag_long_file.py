"""Tag a long recording window by window and print a running summary of what was heard.

    python demos/tag_long_file.py path/to/recording.wav [--model mn04_as] [--window 1 --hop 0.5]

The file is streamed (never loaded whole), so this works the same on a 10-hour archive.
"""
import argparse
import collections

import streamtag


def main() -> None:
    streamtag.show_warnings_as_lines()  # streamtag's notices as one line each, as the CLI prints them
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--model", default=None, help="default: mn10_as, or the bundled mn04_as offline")
    ap.add_argument("--window", type=float, default=1.0)
    ap.add_argument("--hop", type=float, default=0.5)
    ap.add_argument("--threshold", type=float, default=0.3)
    args = ap.parse_args()

    tagger = streamtag.Tagger(args.model, window=args.window, hop=args.hop)
    seconds_heard = collections.Counter()
    for result in tagger.tag_file(args.path):  # results arrive in window order
        label, score = result.top(1)[0]
        if score >= args.threshold:
            seconds_heard[label] += args.hop
            print(f"{result.start_s:7.1f}s  {label:<30} {score:.2f}")
    print("\nmost heard (s):", ", ".join(f"{k} {v:.1f}" for k, v in seconds_heard.most_common(8)))
    stats = tagger.stats
    print(f"{stats.windows} windows, {stats.audio_s:.0f} s of audio at {stats.realtime_factor:.0f}x real time")


if __name__ == "__main__":
    main()
