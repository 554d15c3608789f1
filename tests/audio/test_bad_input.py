"""Every kind of audio input a user may hand over: formats, widths, channels, rates, damage."""
import os
import struct
import threading

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from streamtag import Tagger
from streamtag.cli import main
from streamtag.errors import AudioReadError
from tests.helpers import LABELS_CSV, MN04_WEIGHTS

BASE = ["--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--labels", str(LABELS_CSV), "--window", "1",
        "--hop", "0.5", "--format", "jsonl", "-o", "-", "-q", "--device", "cpu"]


def tone(seconds, rate, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 97 * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def tag(path):
    res = CliRunner().invoke(main, ["tag", str(path), *BASE])
    return res


@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_U8"), ("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_32"),
                                          ("WAV", "FLOAT"), ("WAV", "DOUBLE"), ("FLAC", "PCM_S8"), ("FLAC", "PCM_16"),
                                          ("FLAC", "PCM_24"), ("OGG", "VORBIS")])
def test_every_sample_width(tmp_path, fmt, subtype):
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, tone(2.0, 32000), 32000, format=fmt, subtype=subtype)
    res = tag(path)
    assert res.exit_code == 0, res.output
    assert len(res.stdout.splitlines()) == 3


@pytest.mark.parametrize("channels", range(1, 9))
def test_one_to_eight_channels(tmp_path, channels, mn04):
    path = tmp_path / "c.wav"
    sf.write(path, tone(1.5, 32000, channels), 32000, subtype="FLOAT")
    mono = tmp_path / "m.wav"
    sf.write(mono, tone(1.5, 32000), 32000, subtype="FLOAT")
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu")
    a = [r.scores for r in t.tag_file(path)]
    b = [r.scores for r in t.tag_file(mono)]
    assert len(a) == 2 and np.abs(np.stack(a) - np.stack(b)).max() <= 1e-5  # same signal in every channel


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000, 192000])
def test_sample_rates_from_8k_to_192k(tmp_path, rate, mn04):
    path = tmp_path / "r.wav"
    sf.write(path, tone(2.0, rate), rate)
    results = list(Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu").tag_file(path))
    assert [r.index for r in results] == [0, 1, 2] and results[-1].end_s == 2.0


def test_shorter_than_one_window(tmp_path):
    path = tmp_path / "s.wav"
    sf.write(path, tone(0.3, 44100), 44100)
    res = tag(path)
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 1


def test_nan_and_inf_samples_are_zeroed_and_reported(tmp_path, mn04):
    x = tone(2.0, 32000)
    x[1000:1100] = np.nan
    x[5000] = np.inf
    x[6000] = -np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, x, 32000, subtype="FLOAT")
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu")
    results = list(t.tag_file(path))
    assert all(np.isfinite(r.scores).all() and np.isfinite(r.embedding).all() for r in results)
    assert t.stats.nonfinite_samples == 102
    res = tag(path)
    assert res.exit_code == 0 and "102 NaN/Inf samples were replaced by 0" in res.stderr


def _damaged(tmp_path, kind):
    good = tmp_path / "good.flac"
    sf.write(good, tone(5.0, 32000), 32000)
    data = good.read_bytes()
    path = tmp_path / f"{kind}.wav"
    if kind == "header_only":
        sf.write(path, tone(1.0, 32000), 32000)
        path.write_bytes(path.read_bytes()[:30])
    elif kind == "truncated_flac":
        path = tmp_path / "t.flac"
        path.write_bytes(data[: len(data) // 2])
    elif kind == "not_audio":
        path.write_text("name,value\nthis,is a csv file\n" * 50)
    elif kind == "unsupported_codec":  # a WAV whose format tag says MPEG layer 3
        fmt = struct.pack("<HHIIHH", 0x0055, 1, 32000, 4000, 1, 0)
        body = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 4000) + b"\x00" * 4000
        path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    elif kind == "empty":
        sf.write(path, np.zeros(0, np.float32), 32000)
    return path


@pytest.mark.parametrize("kind, message", [
    ("header_only", "not a readable audio file"), ("truncated_flac", "read failed"),
    ("not_audio", "not a readable audio file"), ("unsupported_codec", "not a readable audio file"),
    ("empty", "contains no audio frames"),
])
def test_damaged_files_fail_with_one_line(tmp_path, kind, message):
    res = tag(_damaged(tmp_path, kind))
    assert res.exit_code == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in res.stderr


def test_file_truncated_while_being_read_raises(tmp_path, mn04):
    path = tmp_path / "long.wav"
    sf.write(path, tone(120.0, 16000), 16000)
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu", batch_size=1)
    once = threading.Event()

    def cut(r):
        if not once.is_set():
            once.set()
            os.truncate(path, os.path.getsize(path) // 3)
    t.subscribe(cut)
    with pytest.raises(AudioReadError, match="ended after .* frames"):
        list(t.tag_file(path))


def test_file_removed_while_being_read_is_tagged_to_the_end(tmp_path, mn04):
    """On POSIX an open file outlives its name: the run completes."""
    path = tmp_path / "gone.wav"
    sf.write(path, tone(30.0, 16000), 16000)
    t = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu", batch_size=1)
    t.subscribe(lambda r: path.exists() and path.unlink())
    assert len(list(t.tag_file(path))) == 59
