"""Faults and shutdown: bad arguments, Ctrl-C, and an hour of live audio without loss or growth."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from streamtag.cli import main
from tests.helpers import CLIP32, MN04_WEIGHTS

CLIP = str(CLIP32)


@pytest.mark.parametrize("args, message", [
    (["--threshold", "1.5"], "a threshold must be between 0 and 1, got 1.5"),
    (["--top-k", "0"], "Invalid value for '--top-k'"),
    (["--median", "2"], "odd"),
    (["--window", "nan"], "finite"),
])
def test_bad_arguments_exit_non_zero_without_traceback(args, message):
    res = CliRunner().invoke(main, ["tag", CLIP, "--model", "mn04_as", *args])
    assert res.exit_code != 0 and message in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("content", [MN04_WEIGHTS.read_bytes()[:100000], b"hello\n"])
def test_corrupt_checkpoint_through_the_cli(tmp_path, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    res = CliRunner().invoke(main, ["tag", CLIP, "--model", "mn04_as", "--weights", str(bad)])
    assert res.exit_code == 1 and "not a readable PyTorch checkpoint" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_a_plot_of_an_unknown_image_type_is_refused_before_tagging(tmp_path):
    res = CliRunner().invoke(main, ["tag", CLIP, "--model", "mn04_as", "--plot", str(tmp_path / "x.txt")])
    assert res.exit_code == 1 and res.stdout == "" and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [f"streamtag: error: --plot {tmp_path / 'x.txt'}: a plot is written as "
                                               "png, pdf, svg, jpg, jpeg, webp, tif, tiff (by its extension)"]


def test_ctrl_c_flushes_valid_output_and_exits_130(tmp_path):
    long = tmp_path / "long.wav"
    x = (np.random.default_rng(0).standard_normal(32000 * 600) * 0.05).astype(np.float32)
    sf.write(long, x, 32000)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "streamtag", "tag", str(long), "--model", "mn04_as", "--weights",
                             str(MN04_WEIGHTS), "--window", "1", "--hop", "0.5", "--format", "jsonl", "-o", str(out),
                             "--device", "cpu"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until windows are being written
        partial = [p for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl.") and p.stat().st_size > 1000]
        if partial:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = out.read_text().splitlines()
    assert 0 < len(lines) < 1199
    assert [json.loads(ln)["window"] for ln in lines] == list(range(len(lines)))  # complete, valid lines
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


class SimulatedLiveSource:
    """A live source delivering noise in 100 ms blocks at `speed` times real time."""

    live = True
    overflows = nonfinite = 0  # a simulated device never overflows; noise is finite
    start_utc = None

    def __init__(self, seconds: float, speed: float, rate: int = 32000) -> None:
        self.seconds, self.speed, self.rate = seconds, speed, rate
        self.closed = threading.Event()

    def length(self, rate):
        return None

    def blocks(self, rate):
        rng = np.random.default_rng(0)
        block = rate // 10
        t0 = time.monotonic()
        for i in range(int(self.seconds * 10)):
            if self.closed.is_set():
                return
            delay = t0 + i * 0.1 / self.speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield (rng.standard_normal(block) * 0.05).astype(np.float32)

    def close(self):
        self.closed.set()


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


SOAK = """
import json, sys, threading
sys.path.insert(0, sys.argv[1])
import time
from streamtag import Tagger, create_model
from tests.helpers import LABELS_CSV, MN04_WEIGHTS
from tests.test_reliability import SimulatedLiveSource, rss_mb
t = Tagger(create_model("mn04_as", weights=MN04_WEIGHTS), window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu")
t.warm_up()
seen = {"n": 0, "last": -1, "lost": 0, "order": True, "samples": []}
def check(r):
    seen["order"] &= r.index == seen["last"] + 1
    seen["last"], seen["n"], seen["lost"] = r.index, seen["n"] + 1, seen["lost"] + r.lost_samples
    if r.index % 720 == 0:
        seen["samples"].append((rss_mb(), threading.active_count()))
t.subscribe(check)
threads_before = threading.active_count()
t.run(SimulatedLiveSource(3600, speed=30))
seen["stats_lost"] = t.stats.lost_samples
deadline = time.monotonic() + 5
while threading.active_count() > threads_before and time.monotonic() < deadline:
    time.sleep(0.05)
seen["threads"] = (threads_before, threading.active_count())
print(json.dumps(seen))
"""
SOAK_SETTLE = 3  # RSS samples (every 6 min of audio) before the allocators settle: a one-off step, in every release


@pytest.mark.slow
def test_soak_one_hour_live_faster_than_real_time():
    """One hour of live audio at 30x, in a process of its own (whose memory is the run's alone): every window
    published once, in order, nothing lost; memory flat after the first 18 minutes; threads flat and back."""
    root = str(Path(__file__).resolve().parents[1])
    res = subprocess.run([sys.executable, "-c", SOAK, root], capture_output=True, text=True, timeout=900, cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    assert seen["order"] and seen["n"] == 7199 and seen["lost"] == 0 and seen["stats_lost"] == 0
    rss = [s[0] for s in seen["samples"][SOAK_SETTLE:]]
    assert len(rss) >= 6 and max(rss) - min(rss) < 30, seen["samples"]
    assert all(s[1] == seen["samples"][0][1] for s in seen["samples"])
    before, after = seen["threads"]
    assert after == before
