"""Windows per second of any registered model in the real pipeline, with random weights (the speed is the same).

`streamtag bench` runs the EfficientAT families; this covers the transformers too. It synthesises a 44.1 kHz
stereo WAV (so decoding and resampling count), tags it once to warm up (exports, caches), then `--repeats`
times, and prints the median windows/s:

    python benchmarks/model_speed.py beats_iter3plus_as2m_as2m --duration 60 --repeats 3
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of synthetic audio")
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--hop", type=float, default=2.5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import streamtag
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "synthetic.wav"
        sf.write(path, (0.1 * rng.standard_normal((int(args.duration * 44100), 2))).astype(np.float32), 44100)
        for name in args.models:
            model = streamtag.create_model(name, pretrained=False)
            tagger = streamtag.Tagger(model, window=args.window, hop=args.hop)
            rates = []
            for i in range(args.repeats + 1):
                t0 = time.perf_counter()
                n = sum(1 for _ in tagger.tag_file(path))
                if i:  # the first run warms up
                    rates.append(n / (time.perf_counter() - t0))
            print(f"{name}: {statistics.median(rates):.1f} windows/s (median of {args.repeats}, {n} windows of "
                  f"{args.window:g} s, hop {args.hop:g} s, random weights)", flush=True)


if __name__ == "__main__":
    main()
