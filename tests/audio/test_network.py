"""Network inputs on 127.0.0.1: an HTTP file is tagged like the file; a live stream that drops reconnects, its
missing time counted; a stream that never comes back fails in one line and keeps what was tagged."""
import csv
import http.server
import io
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from streamtag import Tagger
from streamtag.audio.ffmpeg import FFmpegSource, NetworkStream
from streamtag.audio.inputs import InputOptions, open_audio
from streamtag.cli import main
from tests.audio.media import demo_pcm16, encode, write_wav
from tests.helpers import DEMO_CLIP, LABELS_CSV, MN04_WEIGHTS

pytest.importorskip("av", reason="needs PyAV (the [ffmpeg] extra, part of [test])")

FAST = ["--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--window", "1", "--hop", "0.5", "--device", "cpu"]
CHUNK = 2000  # bytes per chunk of a streamed response
PACE_S = 0.01  # between chunks: a 6 s, 64 kbit/s MP3 streams in ~0.25 s


class Station:
    """A tiny HTTP server: `/file.wav` with a length; `/live.mp3` chunked, dropped after its first half on the
    first request and the rest served on the second; later requests get `after` (404: the stream is over)."""

    def __init__(self, folder):
        x, rate = demo_pcm16()
        write_wav(folder / "file.wav", x, rate)
        mono = x[:, :1].copy()
        half = len(mono) // 2
        for name, part in (("first", mono[:half]), ("second", mono[half:])):
            encode(folder / f"{name}.mp3", part, rate, "libmp3lame", bit_rate=64000)
        self.data = {name: (folder / name).read_bytes() for name in ("file.wav", "first.mp3", "second.mp3")}
        self.requests = 0
        self.after = 404
        station = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/file.wav":
                    body = station.data["file.wav"]
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/wav")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                station.requests += 1
                if station.requests > 2:
                    self.send_error(station.after)
                    return
                body = station.data["first.mp3" if station.requests == 1 else "second.mp3"]
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(body), CHUNK):
                    part = body[i:i + CHUNK]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.flush()
                    time.sleep(PACE_S)
                if station.requests == 1:
                    self.connection.shutdown(2)  # dropped mid-stream: no end chunk
                    return
                self.wfile.write(b"0\r\n\r\n")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def station(tmp_path):
    s = Station(tmp_path)
    yield s
    s.close()


def rows(text):
    return [json.loads(ln) for ln in text.splitlines() if ln.strip()]


def test_an_http_file_is_tagged_like_the_file(station, tmp_path):
    url = f"{station.url}/file.wav"
    source = open_audio(url)
    assert isinstance(source, FFmpegSource) and not source.live and source.length(32000) is not None
    res = CliRunner().invoke(main, ["tag", url, *FAST, "--format", "jsonl", "-q"])
    local = CliRunner().invoke(main, ["tag", str(tmp_path / "file.wav"), *FAST, "--format", "jsonl", "-q"])
    assert res.exit_code == 0 and local.exit_code == 0, res.stderr
    strip = lambda text: [{k: v for k, v in r.items() if k != "file"} for r in rows(text)]  # noqa: E731
    assert strip(res.stdout) == strip(local.stdout) and len(strip(res.stdout)) == 24


def test_a_dropped_stream_reconnects_and_counts_the_gap(station, mn04):
    source = open_audio(f"{station.url}/live.mp3", InputOptions(reconnect=3))
    assert isinstance(source, NetworkStream) and source.live
    tagger = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu")
    results = list(tagger.iter_source(source))
    stats = tagger.stats
    assert source.reconnects == 1 and station.requests == 3  # the drop, the rest, then 404: the end
    assert stats.lost_samples > 0.2 * 32000  # at least the first backoff without audio
    assert stats.lossy_windows >= 1 and stats.lossy_windows == sum(r.lossy for r in results)
    assert stats.audio_s > 12.0  # both halves and the gap
    assert results[0].stream_start_utc is not None  # the capture clock
    assert results[-1].start_utc > results[0].start_utc


def test_the_cli_tags_a_stream_to_its_end(station, tmp_path):
    out = tmp_path / "live.jsonl"
    res = CliRunner().invoke(main, ["tag", f"{station.url}/live.mp3", *FAST, "-o", str(out), "--reconnect", "2",
                                    "--progress"])  # a progress line without a total
    assert res.exit_code == 0, res.stderr
    got = rows(out.read_text())
    assert got and any(r.get("lost_samples") for r in got) and all("start_utc" in r for r in got)
    assert "s of audio lost" in res.stderr and "streamtag: 1 of 1 files" in res.stderr


def test_a_stream_that_never_comes_back_fails_in_one_line_and_keeps_its_rows(station, tmp_path):
    station.data["second.mp3"] = b""  # the reconnect finds nothing: every later request fails
    station.after = 503
    out = tmp_path / "live.csv"
    res = CliRunner().invoke(main, ["tag", f"{station.url}/live.mp3", *FAST, "-o", str(out), "--reconnect", "2", "-q"])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "live.mp3: connection lost and 2 reconnect attempt(s) failed" in lines[0]
    table = out.read_text().splitlines()
    assert table[0].startswith("file,model,window,start_s,end_s,start_utc,end_utc,rank") and len(table) > 5


def test_an_unreachable_url_is_one_line(tmp_path):
    res = CliRunner().invoke(main, ["tag", "http://127.0.0.1:9/x.mp3", *FAST, "-q"])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines() == ["streamtag: error: http://127.0.0.1:9/x.mp3: cannot open "
                                               "(Connection refused)"]


def test_listen_takes_a_stream_url(station):
    res = CliRunner().invoke(main, ["listen", "--input", f"{station.url}/live.mp3", *FAST, "--format", "jsonl",
                                    "-q"])
    assert res.exit_code == 0, res.stderr
    got = rows(res.stdout)
    assert len(got) > 10 and all(r["start_utc"].endswith("Z") for r in got)


def test_listen_reads_audio_piped_to_stdin(tmp_path):
    env = dict(os.environ, STREAMTAG_HOME=str(tmp_path / "home"))
    with open(DEMO_CLIP, "rb") as f:
        res = subprocess.run([sys.executable, "-m", "streamtag", "listen", "--input", "-", *FAST, "--format", "csv",
                              "-q"], stdin=f, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    table = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(table[0])[5:7] == ["start_utc", "end_utc"] and len({r["window"] for r in table}) >= 20
    assert all(r["start_utc"].endswith("Z") for r in table) and np.isfinite([float(r["score"]) for r in table]).all()
