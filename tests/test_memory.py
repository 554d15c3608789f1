"""Flat memory: tagging a 1-hour file (WAV, or AAC in M4A through FFmpeg) peaks within 50 MB of a 10-minute one
(streamed, never loaded whole)."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import MN04_WEIGHTS

MEASURE = """
import resource, sys
from streamtag.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    if e.code:
        raise
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def write_noise(path, seconds, rate=16000):
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, 1, "PCM_16") as f:
        for _ in range(seconds // 60):
            f.write((rng.standard_normal(rate * 60) * 0.05).astype(np.float32))


def peak_rss_mb(path, out):
    res = subprocess.run([sys.executable, "-c", MEASURE, "tag", str(path), "--model", "mn04_as", "--weights",
                          str(MN04_WEIGHTS), "--window", "10", "--hop", "10", "--format", "npz", "-o", str(out),
                          "-q", "--device", "cpu"], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    return int(res.stderr.strip().splitlines()[-1]) / 1024


def write_noise_m4a(path, seconds, rate=16000):
    """Noise as AAC in MP4, encoded a minute at a time (never whole)."""
    import av
    from fractions import Fraction
    rng = np.random.default_rng(0)
    out = av.open(str(path), "w")
    stream = out.add_stream("aac", rate=rate, layout="mono")
    stream.bit_rate = 32000
    size = 1024  # AAC-LC samples per frame
    pts = 0
    for _ in range(seconds // 60):
        minute = (rng.standard_normal(rate * 60) * 0.05).astype(np.float32)
        for i in range(0, len(minute), size):
            frame = av.AudioFrame.from_ndarray(minute[None, i:i + size].copy(), format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, pts, Fraction(1, rate)
            pts += frame.samples
            out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
    out.close()


@pytest.mark.slow
@pytest.mark.parametrize("ext, write", [("wav", write_noise), ("m4a", write_noise_m4a)])
def test_peak_memory_does_not_grow_with_file_length(tmp_path, ext, write):
    if ext == "m4a":
        pytest.importorskip("av", reason="needs PyAV (the [ffmpeg] extra, part of [test])")
    write(tmp_path / f"ten_min.{ext}", 600)
    write(tmp_path / f"one_hour.{ext}", 3600)
    # peak RSS of one process varies by +-40 MB from run to run (allocator arenas of the threads),
    # so each length takes the lower of two runs
    short = min(peak_rss_mb(tmp_path / f"ten_min.{ext}", tmp_path / "a.npz") for _ in range(2))
    long = min(peak_rss_mb(tmp_path / f"one_hour.{ext}", tmp_path / "b.npz") for _ in range(2))
    with np.load(tmp_path / "b.npz") as z:
        assert z["scores"].shape == (360, 527)
    assert long - short < 50, f"10 min: {short:.0f} MB, 1 h: {long:.0f} MB"
