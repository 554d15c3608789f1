"""Wall-clock starts: ISO times, file-name patterns and container metadata, and the UTC times every output carries."""
import csv
import io
import json
from datetime import datetime, timezone

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from streamtag.audio.clock import StartClock, name_regex, parse_utc
from streamtag.cli import main
from streamtag.errors import AudioReadError, ConfigError
from tests.helpers import MN04_WEIGHTS

FAST = ["--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--window", "1", "--hop", "0.5", "--device", "cpu",
        "-q"]
UTC = timezone.utc


@pytest.mark.parametrize("text, expected", [
    ("2026-05-01T05:30:00Z", datetime(2026, 5, 1, 5, 30, tzinfo=UTC)),
    ("2026-05-01T05:30:00", datetime(2026, 5, 1, 5, 30, tzinfo=UTC)),  # no offset: UTC
    ("2026-05-01T07:30:00+02:00", datetime(2026, 5, 1, 5, 30, tzinfo=UTC)),
    ("2026-05-01 05:30:00.250", datetime(2026, 5, 1, 5, 30, 0, 250000, tzinfo=UTC)),
])
def test_iso_times_become_utc(text, expected):
    assert parse_utc(text) == expected


@pytest.mark.parametrize("pattern, name, expected", [
    ("%Y%m%d_%H%M%S", "20260501_053000.wav", datetime(2026, 5, 1, 5, 30, tzinfo=UTC)),  # AudioMoth
    ("%Y%m%d_%H%M%S", "SITE3_20260501_053000.WAV", datetime(2026, 5, 1, 5, 30, tzinfo=UTC)),  # with a prefix
    ("%Y-%m-%d %H-%M-%S", "rec 2026-05-01 05-30-00 (2).m4a", datetime(2026, 5, 1, 5, 30, tzinfo=UTC)),
    ("%Y%m%dT%H%M%S%z", "x_20260501T073000+0200.flac", datetime(2026, 5, 1, 5, 30, tzinfo=UTC)),
    ("%y%m%d-%H%M", "mic-260501-0530.wav", datetime(2026, 5, 1, 5, 30, tzinfo=UTC)),
])
def test_file_name_patterns(pattern, name, expected):
    assert StartClock.from_options(start_time_from=f"name:{pattern}").start_of(f"/data/{name}") == expected


def test_a_name_without_the_time_is_a_per_file_error():
    clock = StartClock.from_options(start_time_from="name:%Y%m%d_%H%M%S")
    with pytest.raises(AudioReadError, match="holds no time in the form"):
        clock.start_of("/data/dawn chorus.wav")


@pytest.mark.parametrize("start_time, start_time_from, message", [
    ("yesterday", None, "not ISO 8601"), (None, "name:", "needs a pattern"), (None, "name:%Y%Q", "%Q is not supported"),
    (None, "exif", "name:PATTERN or metadata"), ("2026-05-01T00:00:00Z", "metadata", "not both"),
])
def test_bad_clock_options(start_time, start_time_from, message):
    with pytest.raises(ConfigError, match=message):
        StartClock.from_options(start_time, start_time_from)


def test_name_regex_escapes_literal_text():
    assert name_regex("%Y.%m").fullmatch("2026.05") and not name_regex("%Y.%m").fullmatch("2026x05")


@pytest.fixture
def recording(tmp_path):
    path = tmp_path / "20260501_053000.wav"
    rng = np.random.default_rng(0)
    sf.write(path, (rng.standard_normal(32000 * 3) * 0.1).astype(np.float32), 32000)
    return path


def test_name_times_reach_jsonl_csv_text_and_npz(recording, tmp_path):
    opts = [*FAST, "--start-time-from", "name:%Y%m%d_%H%M%S"]
    res = CliRunner().invoke(main, ["tag", str(recording), *opts, "--format", "jsonl"])
    assert res.exit_code == 0, res.stderr
    got = [json.loads(ln) for ln in res.stdout.splitlines()]
    assert got[0]["start_utc"] == "2026-05-01T05:30:00.000Z" and got[0]["end_utc"] == "2026-05-01T05:30:01.000Z"
    assert got[3]["start_utc"] == "2026-05-01T05:30:01.500Z"
    table = list(csv.DictReader(io.StringIO(CliRunner().invoke(main, ["tag", str(recording), *opts, "--format",
                                                                       "csv"]).stdout)))
    assert table[0]["start_utc"] == "2026-05-01T05:30:00.000Z" and table[-1]["end_utc"] == "2026-05-01T05:30:03.000Z"
    text = CliRunner().invoke(main, ["tag", str(recording), *opts]).stdout.splitlines()
    assert "2026-05-01T05:30:00.500Z" in text[2]
    out = tmp_path / "out.npz"
    assert CliRunner().invoke(main, ["tag", str(recording), *opts, "-o", str(out)]).exit_code == 0
    with np.load(out) as z:
        assert z["start_utc"].dtype == np.dtype("datetime64[us]")
        assert str(z["start_utc"][1]) == "2026-05-01T05:30:00.500000" and len(z["end_utc"]) == len(z["start_s"])


def test_events_and_raven_carry_utc(recording, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["tag", str(recording), *FAST, "--start-time", "2026-05-01T07:30:00+02:00",
                                    "--output-dir", str(out), "--format", "raven,csv", "--events",
                                    "--threshold", "0.0"])
    assert res.exit_code == 0, res.stderr
    raven = list(csv.DictReader((out / "20260501_053000.selection.table.txt").open(), delimiter="\t"))
    assert raven and raven[0]["Begin Date Time"].startswith("2026/05/01 05:30:0")
    events = list(csv.DictReader((out / "20260501_053000.events.csv").open()))
    assert events[0]["onset_utc"].startswith("2026-05-01T05:30:0") and events[0]["onset_utc"].endswith("Z")
    side = json.loads((out / "20260501_053000.streamtag.json").read_text())
    assert side["clock"]["kind"] == "given" and side["start_utc"] == "2026-05-01T05:30:00.000Z"
    again = CliRunner().invoke(main, ["tag", str(recording), *FAST, "--output-dir", str(out), "--format",
                                      "raven,csv", "--events", "--threshold", "0.0"])
    assert again.exit_code == 0  # without the clock: redone (the sidecar differs), not resumed
    assert json.loads((out / "20260501_053000.streamtag.json").read_text())["clock"] is None


def test_metadata_times(tmp_path):
    pytest.importorskip("av", reason="needs PyAV (the [ffmpeg] extra, part of [test])")
    from tests.audio.media import demo_pcm16, encode
    x, rate = demo_pcm16()
    path = tmp_path / "memo.m4a"
    encode(path, x[:3 * rate], rate, "aac", metadata={"creation_time": "2026-05-01T05:30:00.000000Z"})
    res = CliRunner().invoke(main, ["tag", str(path), *FAST, "--start-time-from", "metadata", "--format", "jsonl"])
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout.splitlines()[0])["start_utc"] == "2026-05-01T05:30:00.000Z"


def test_one_start_time_for_several_files_is_refused(recording, tmp_path):
    other = tmp_path / "b.wav"
    other.write_bytes(recording.read_bytes())
    res = CliRunner().invoke(main, ["tag", str(recording), str(other), *FAST, "--start-time", "2026-05-01T00:00:00Z"])
    assert res.exit_code == 1 and "for several, use --start-time-from" in res.stderr
