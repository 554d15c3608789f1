"""RSS while `Index.add_files` indexes one long recording: flat apart from the index's own vectors.

    python benchmarks/index_rss.py --minutes 60      # the 1-hour measurement in docs/search.md

Synthesises a recording (tones and noise, 16 kHz mono), indexes it with mn04_as at 1 s / 0.5 s and samples
the process's RSS as each window reaches the index. Prints one JSON object: windows, seconds, RSS once a
tenth of the windows are in (`rss_early_mb`, start-up over), the peak after it (`rss_peak_mb`), their
difference, and the vectors' own share of it (windows x dimensions x 4 bytes plus the graph's links), which a
flat pipeline should roughly account for.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import psutil

RATE = 16000


def write_recording(path: Path, minutes: float, seed: int = 0) -> None:
    """A long 16-bit WAV written a minute at a time (tone bursts over noise)."""
    rng = np.random.default_rng(seed)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        for m in range(int(np.ceil(minutes))):
            n = int(min(1.0, minutes - m) * 60 * RATE)
            t = np.arange(n) / RATE
            x = 0.02 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * rng.uniform(300, 3000) * t) * (
                (t * rng.uniform(0.5, 3)) % 1 < 0.3)
            w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def measure(minutes: float, folder: Path) -> dict:
    from streamtag.index import Index, tagger_info
    from streamtag.pipeline.tagger import Tagger

    audio = folder / "long.wav"
    write_recording(audio, minutes)
    tagger = Tagger("mn04_as", window=1.0, hop=0.5, device="cpu")
    index = Index.create(folder / "index", tagger_info(tagger))
    proc, samples = psutil.Process(), []
    expected = int((minutes * 60 - 1.0) / 0.5) + 1
    iter_source = tagger.iter_source

    def counted(source):  # RSS as each window reaches the index
        for r in iter_source(source):
            samples.append(proc.memory_info().rss)
            yield r
    tagger.iter_source = counted
    t0 = time.perf_counter()
    report = index.add_files([str(audio)], tagger)
    seconds = time.perf_counter() - t0
    early = samples[max(1, expected // 10) - 1]  # once a tenth of the windows are in (start-up is over)
    peak = max(samples[expected // 10:])
    vectors_mb = report.windows * (index.info.dim * 4 + 16 * 2 * 8) / 1e6  # f32 vectors + HNSW links
    index.close()
    return {"minutes": minutes, "windows": report.windows, "seconds": round(seconds, 1),
            "rss_early_mb": round(early / 1e6, 1), "rss_peak_mb": round(peak / 1e6, 1),
            "growth_mb": round((peak - early) / 1e6, 1), "vectors_mb": round(vectors_mb, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(measure(a.minutes, Path(d))))


if __name__ == "__main__":
    main()
