"""Your own classes in a minute: synthesise three sounds, train a head on mn04_as embeddings, tag live.

    python demos/train_own_head.py [WORKDIR]

Writes WORKDIR/data/<class>/*.wav (beep, click, hiss and _background), trains WORKDIR/head.pt
exactly as `streamtag train WORKDIR/data -o WORKDIR/head.pt --model mn04_as` would, then pushes a
new recording (beep, hiss, click) block by block through `Tagger.feed` and prints the head's tags.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
CLASSES = ("beep", "click", "hiss")


def sound(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A few seconds of one synthetic class: tone bursts, a click train, a 4-6 kHz noise band, or quiet noise."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    x = 0.003 * rng.standard_normal(n)
    if kind == "beep":
        x += 0.3 * np.sin(2 * np.pi * rng.uniform(900, 1300) * t) * ((t * 4) % 1 < 0.5)
    elif kind == "click":
        for start in np.arange(0, seconds, rng.uniform(0.08, 0.12)):
            i = int(start * RATE)
            x[i:i + 40] += 0.8 * rng.standard_normal(len(x[i:i + 40]))
    elif kind == "hiss":
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / RATE)
        spectrum[(freqs < 4000) | (freqs > 6000)] = 0
        band = np.fft.irfft(spectrum, n)
        x += 0.3 * band / band.std()
    else:  # background
        x += 0.01 * rng.standard_normal(n)
    return x.astype(np.float32)


def make_dataset(root: str | Path, per_class: int = 6, seconds: float = 3.0, seed: int = 0) -> Path:
    """root/<class>/<class><i>.wav for the three classes and _background."""
    root, rng = Path(root), np.random.default_rng(seed)
    for kind in (*CLASSES, "_background"):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            sf.write(root / kind / f"{kind}{i}.wav", sound(kind, seconds, rng), RATE)
    return root


def main(workdir: str) -> None:
    import streamtag
    streamtag.show_warnings_as_lines()  # streamtag's notices as one line each, as the CLI prints them

    work = Path(workdir)
    data = make_dataset(work / "data")
    report = streamtag.train_head([data], output=work / "head.pt", model="mn04_as", window=1.0, hop=0.5)
    for c in report.classes:
        v = report.validation[c]
        print(f"{c:<6} validation F1 {v['f1']:.2f}  threshold {v['threshold']:.2f}")

    rng = np.random.default_rng(42)
    recording = np.concatenate([sound(k, 3.0, rng) for k in ("beep", "hiss", "click")])
    tagger = streamtag.Tagger(head=work / "head.pt", device="cpu")
    tagger.subscribe(lambda r: print(f"{r.start_s:5.1f}-{r.end_s:4.1f} s  "
                                     + ", ".join(f"{n} {s:.2f}" for n, s in r.top(1))))
    with tagger:
        for block in np.array_split(recording, 30):  # as an application would push audio
            tagger.feed(block, RATE)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as d:
            main(d)
