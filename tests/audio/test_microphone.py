"""Live capture through a real audio server: PulseAudio with a null sink, recorded from its monitor.

A known recording is played into the sink with paplay while `streamtag listen` records the
sink's monitor through the ALSA device `pulse`. In CI, .ci/run installs PulseAudio; elsewhere
these tests are skipped with the reason when no server can be started.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import LABELS_CSV, MN04_WEIGHTS, ROOT

pytestmark = pytest.mark.audio_device
CLIP = ROOT / "demos" / "speech_dog_12s.flac"


@pytest.fixture(scope="module")
def pulse():
    if not shutil.which("pulseaudio") or not shutil.which("paplay"):
        pytest.skip("PulseAudio is not installed (Debian: pulseaudio pulseaudio-utils libportaudio2 "
                    "libasound2-plugins)")
    started = subprocess.run(["pactl", "info"], capture_output=True).returncode != 0
    if started:
        subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1", "-n",
                        "--load=module-null-sink sink_name=virt", "--load=module-native-protocol-unix"],
                       capture_output=True, timeout=30)
        for _ in range(50):
            if subprocess.run(["pactl", "info"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.skip("a PulseAudio server could not be started here")
    sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True).stdout
    if "virt" not in sinks:
        subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=virt"], capture_output=True)
    subprocess.run(["pactl", "set-default-source", "virt.monitor"], check=True)
    yield
    if started:
        subprocess.run(["pulseaudio", "--kill"], capture_output=True)


SLOW_LISTEN = ROOT / "tests" / "audio" / "slow_listen.py"


def listen(tmp_path, *extra, play=None, duration=16, slow=None):
    """Run `streamtag listen` on the sink's monitor (with `slow` s of sleep per batch: through slow_listen.py)."""
    out = tmp_path / "live.jsonl"
    command = [sys.executable, str(SLOW_LISTEN), str(slow)] if slow else [sys.executable, "-m", "streamtag", "listen"]
    cmd = [*command, "--input", "pulse", "--model", "mn04_as", "--weights",
           str(MN04_WEIGHTS), "--labels", str(LABELS_CSV), "--window", "1", "--hop", "0.5", "--duration",
           str(duration), "--format", "jsonl", "--output", str(out), "--device", "cpu", *extra]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    first = proc.stderr.readline()  # "listening on ..." once capture runs
    assert "listening on pulse" in first, first + proc.stderr.read()
    player = subprocess.Popen(["paplay", "--device=virt", str(play)]) if play else None
    _, err = proc.communicate(timeout=duration + 120)
    if player:
        player.wait(timeout=30)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    return proc.returncode, first + err, lines


@pytest.mark.slow  # real time (15-27 s): runs in the full suite, not in the fresh clone's quick pass
def test_listen_names_what_is_played_with_contiguous_windows_and_no_loss(pulse, tmp_path):
    code, err, rows = listen(tmp_path, play=CLIP, duration=16)
    assert code == 0, err
    assert [r["window"] for r in rows] == list(range(len(rows))) and len(rows) >= 25
    assert all(r["start_s"] == pytest.approx(0.5 * r["window"]) for r in rows)
    assert not any("lost_samples" in r for r in rows) and "warning: lost" not in err
    top3 = [[t["label"] for t in r["top"][:3]] for r in rows]
    speech = [k for k, t in enumerate(top3) if "Speech" in t]
    dog = [k for k, t in enumerate(top3) if "Dog" in t]
    assert len(speech) >= 5 and len(dog) >= 5, top3
    assert sorted(speech)[len(speech) // 2] < sorted(dog)[len(dog) // 2]  # speech, then the dog
    assert re.search(r"latency p50 \d+ ms, p95 \d+ ms", err)


@pytest.mark.slow  # real time (15-27 s): runs in the full suite, not in the fresh clone's quick pass
def test_a_slow_model_loses_audio_and_says_so_with_exact_counts(pulse, tmp_path):
    code, err, rows = listen(tmp_path, "--buffer-seconds", "1.5", duration=9, slow=2.0)
    assert code == 0, err
    m = re.search(r"warning: lost (\d+) samples \(([\d.]+) s\) in (\d+) of (\d+) windows; device overflows: (\d+)",
                  err)
    assert m, err
    lost, lossy, total = int(m.group(1)), int(m.group(3)), int(m.group(4))
    assert lost > 0 and total == len(rows)
    assert lossy == sum(1 for r in rows if r.get("lost_samples", 0) > 0) > 0
    assert all(0 < r["lost_samples"] <= 32000 for r in rows if "lost_samples" in r)


def test_unknown_input_lists_the_devices(pulse):
    res = subprocess.run([sys.executable, "-m", "streamtag", "listen", "--input", "no-such-mic", "--model",
                          "mn04_as", "--duration", "1"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "no input device matches 'no-such-mic'" in res.stderr
    assert "pulse" in res.stderr and "Traceback" not in res.stderr


def test_devices_lists_inputs(pulse):
    res = subprocess.run([sys.executable, "-m", "streamtag", "devices", "--json"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and any(d["name"] == "pulse" for d in json.loads(res.stdout))


def test_audio_server_disappearing_stops_cleanly_with_the_device_error(pulse, tmp_path):
    """Kill the audio server mid-capture: listen ends within seconds, names the device, exits 1."""
    proc = subprocess.Popen([sys.executable, "-m", "streamtag", "listen", "--input", "pulse", "--model", "mn04_as",
                             "--weights", str(MN04_WEIGHTS), "--duration", "60", "--format", "jsonl", "--output",
                             str(tmp_path / "o.jsonl"), "--device", "cpu"], stderr=subprocess.PIPE, text=True)
    assert "listening on pulse" in proc.stderr.readline()
    time.sleep(3)
    subprocess.run(["pulseaudio", "--kill"], capture_output=True)
    try:
        _, err = proc.communicate(timeout=40)  # far less than the 60 s asked for
    finally:
        proc.kill()
        subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1", "-n", "--load=module-null-sink sink_name=virt",
                        "--load=module-native-protocol-unix"], capture_output=True, timeout=30)
    assert proc.returncode == 1
    assert "streamtag: error: pulse: the input device stopped delivering audio" in err and "Traceback" not in err
    assert (tmp_path / "o.jsonl").exists()  # what was tagged before the loss is kept


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_listen_stops_on_termination_signals_and_keeps_what_it_tagged(pulse, tmp_path, sig, code):
    out = tmp_path / "o.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "streamtag", "listen", "--input", "pulse", "--model", "mn04_as",
                             "--weights", str(MN04_WEIGHTS), "--duration", "60", "--format", "jsonl", "--output",
                             str(out), "--device", "cpu", "--window", "1", "--hop", "0.5"],
                            stderr=subprocess.PIPE, text=True)
    assert "listening on pulse" in proc.stderr.readline()
    time.sleep(3)
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and [r["window"] for r in rows] == list(range(len(rows)))
