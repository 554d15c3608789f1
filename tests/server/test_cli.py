"""`streamtag serve` and `streamtag listen --serve` from the command line, each in its own process: the dashboard in
Chromium, the detections database and its clips over the API (traversal refused), and one-line errors."""
from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import aiohttp
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from streamtag.cli import main
from tests.helpers import DEMO_CLIP, LABELS_CSV, MN04_WEIGHTS
from tests.server.test_browser import browser

MODEL = ["--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--labels", str(LABELS_CSV), "--device", "cpu"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def cli(*args: str, stdin=None, stdout=subprocess.DEVNULL, ready: str = "serving"):
    """`streamtag ARGS` in its own process, once its stderr says `ready`; SIGINT at the end if still running."""
    proc = subprocess.Popen([sys.executable, "-m", "streamtag", *args], stdin=stdin, stderr=subprocess.PIPE,
                            stdout=stdout, text=True)
    lines: list[str] = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if ready in line:
                break
        assert any(ready in line for line in lines), f"no {ready!r} line: {''.join(lines)}"
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        lines.append(proc.stderr.read())  # a few lines: they fit in the pipe
    assert "Traceback" not in "".join(lines), "".join(lines)


def get(url: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET, sent as written (no path normalisation, no redirect)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def wait_ended(url: str, name: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = {s["name"]: s for s in json.loads(get(url + "/api/status")[2])["sources"]}
        if st[name]["state"] == "ended":
            return st[name]
        time.sleep(0.3)
    raise AssertionError(f"{name} did not end: {st[name]}")


def test_serve_config_file_source_in_chromium_with_stored_events_and_playable_clips(tmp_path):
    """`serve CONFIG` with a realtime file source that stores its events and clips: the dashboard draws it, its
    event rows get an audio player whose clip the page can fetch; then /api/detections answers like the database and
    /api/clips serves each stored clip and nothing else."""
    from playwright.sync_api import sync_playwright
    port = free_port()
    cfg = tmp_path / "serve.toml"
    cfg.write_text(textwrap.dedent(f"""
        [server]
        bind = "127.0.0.1:{port}"
        [defaults]
        model = "mn04_as"
        weights = "{MN04_WEIGHTS}"
        [[source]]
        name = "demo"
        input = "{DEMO_CLIP}"
        realtime = true
        store = "db/events.sqlite"
        clips = "clips"
        clip_padding = 0.5
    """))
    url = f"http://127.0.0.1:{port}"
    with cli("serve", str(cfg), "--labels", str(LABELS_CSV), "--device", "cpu") as (proc, lines), \
            sync_playwright() as p:
        assert f"on {url}/" in "".join(lines)
        b = browser(p)
        page = b.new_page(viewport={"width": 1300, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_function("() => +(document.querySelector('.heat')?.dataset.columns || 0) >= 4", timeout=30000)
        page.wait_for_function("() => [...document.querySelectorAll('.tags li')].some(li => "
                               "li.textContent.startsWith('Speech'))", timeout=20000)
        page.wait_for_function("() => document.querySelectorAll('.events tbody tr audio').length > 0", timeout=30000)
        src = page.eval_on_selector(".events tbody tr audio", "a => a.getAttribute('src')")
        assert src.startswith("/api/clips/") and "source=demo" in src
        fetched = page.evaluate("async (u) => { for (let i = 0; i < 40; i++) { const r = await fetch(u); "
                                "if (r.ok) return [r.status, r.headers.get('content-type'), (await r.arrayBuffer())"
                                ".byteLength]; await new Promise(z => setTimeout(z, 250)); } return [404]; }", src)
        assert fetched[0] == 200 and fetched[1] == "audio/flac" and fetched[2] > 1000, fetched
        shot = tmp_path / "dashboard-cli.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")
        assert not errors, errors
        b.close()
        wait_ended(url, "demo")
        time.sleep(1.0)  # the last clip's padding
        status, ctype, body = get(url + "/api/detections")
        assert status == 200 and ctype.startswith("application/json")
        events = json.loads(body)["events"]
        db = sqlite3.connect(tmp_path / "db" / "events.sqlite")
        rows = db.execute("SELECT id, label, onset_s, clip_path FROM events ORDER BY onset_utc, id").fetchall()
        assert [(e["id"], e["label"], e["onset_s"]) for e in events] == [r[:3] for r in rows]
        assert {"Speech", "Dog"} <= {e["label"] for e in events}
        assert all("clip_path" not in e for e in events)
        dogs = json.loads(get(url + "/api/detections?label=dog&source=demo")[2])["events"]
        assert dogs and all(e["label"] == "Dog" for e in dogs)
        last = json.loads(get(url + "/api/detections?limit=1")[2])["events"]
        assert [e["id"] for e in last] == [events[-1]["id"]]
        assert json.loads(get(url + "/api/detections?since=2999-01-01")[2])["events"] == []
        for bad in ["limit=0", "limit=x", "since=yesterday", "source=nope"]:
            status, _, body = get(url + "/api/detections?" + bad)
            assert status == 400 and b"Traceback" not in body, bad
        for e in events:
            assert e["clip_url"] == f"/api/clips/{e['id']}?source=demo"
            status, ctype, body = get(url + e["clip_url"])
            assert status == 200 and ctype == "audio/flac"
            x, rate = sf.read(io.BytesIO(body))
            assert abs(len(x) / rate - (e["offset_s"] - e["onset_s"] + 1.0)) < 0.6
        outside = tmp_path / "secret.flac"
        sf.write(outside, np.zeros(3200, np.float32), 32000)
        (tmp_path / "clips" / "link.flac").symlink_to(outside)
        first = events[0]["id"]
        with sqlite3.connect(tmp_path / "db" / "events.sqlite") as w:  # rows pointing outside the clips folder
            w.execute("UPDATE events SET clip_path = ? WHERE id = ?", (str(outside), first))
            w.execute("UPDATE events SET clip_path = ? WHERE id = ?",
                      (str(tmp_path / "clips" / ".." / "secret.flac"), events[1]["id"]))
            w.execute("UPDATE events SET clip_path = ? WHERE id = ?", (str(tmp_path / "clips" / "link.flac"),
                                                                       events[2]["id"]))
        for path in [f"/api/clips/{first}", f"/api/clips/{events[1]['id']}", f"/api/clips/{events[2]['id']}",
                     "/api/clips/999999", f"/api/clips/{events[3]['id']}?source=other", "/api/clips/..%2f..%2fsecret",
                     "/api/clips/../../secret.flac", "/api/clips/-1", "/api/clips/1.flac", "/api/clips/%2e%2e"]:
            status, _, body = get(url + path)
            assert status == 404 and b"secret" not in body and b"Traceback" not in body, path
        assert get(url + f"/api/clips/{events[3]['id']}")[0] == 200  # one database: no source needed
        assert get(url + "/api")[2].count(b"/api/clips") == 1
    assert proc.returncode == 130  # Ctrl-C: every source stopped, the database closed
    assert "interrupted" in "".join(lines)


def test_serve_two_cli_sources_share_one_model_and_a_remote_client_gets_the_local_windows(tmp_path):
    """`serve --source a=FILE --source b=FILE --realtime`: both run on one loaded model; `streamtag.remote.subscribe`
    in another process gets windows whose scores equal a local Tagger's on the same file."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = tmp_path / "remote.npz"
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from streamtag.remote import subscribe
        from streamtag.pipeline.result import WindowResult
        idx, scores = [], []
        for got in subscribe(sys.argv[1], sources=["b"]):
            if isinstance(got.item, WindowResult):
                idx.append(got.item.index); scores.append(got.item.scores)
                if len(idx) == 8:
                    break
        np.savez({str(out)!r}, idx=np.array(idx), scores=np.stack(scores))
    """)
    with cli("serve", "--source", f"a={DEMO_CLIP}", "--source", f"b={DEMO_CLIP}", "--realtime", "--window", "1",
             "--hop", "0.5", "--bind", f"127.0.0.1:{port}", *MODEL):
        remote = subprocess.run([sys.executable, "-c", script, url], timeout=90, capture_output=True, text=True)
        assert remote.returncode == 0, remote.stderr
        status = json.loads(get(url + "/api/status")[2])
    assert status["models_loaded"] == 1
    assert {s["name"]: s["kind"] for s in status["sources"]} == {"a": "file", "b": "file"}
    got = np.load(out)
    from streamtag.pipeline.tagger import Tagger
    local = list(Tagger("mn04_as", 1.0, 0.5, device="cpu", weights=str(MN04_WEIGHTS),
                        labels=str(LABELS_CSV)).tag_file(DEMO_CLIP))
    assert list(got["idx"]) == list(range(got["idx"][0], got["idx"][0] + 8))
    np.testing.assert_array_equal(got["scores"], np.stack([local[i].scores for i in got["idx"]]))


def test_listen_serve_gives_the_dashboard_and_api_for_its_one_source(tmp_path):
    """`listen --input - --serve HOST:PORT`: the same page and API for listen's own pipeline; a WebSocket client
    gets every window of the piped audio in order, and listen still prints its own results."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    x, rate = sf.read(DEMO_CLIP, dtype="float32")
    wav = tmp_path / "in.wav"
    sf.write(wav, x, rate)
    printed = tmp_path / "listen.txt"
    with printed.open("w") as stdout, cli("listen", "--input", "-", "--serve", f"127.0.0.1:{port}", *MODEL,
                                          stdin=subprocess.PIPE, stdout=stdout, ready="serving the dashboard") \
            as (proc, lines):
        assert get(url + "/")[0] == 200 and get(url + "/static/app.js")[0] == 200
        sources = json.loads(get(url + "/api/sources")[2])["sources"]
        assert len(sources) == 1 and sources[0]["model"] == "mn04_as"

        async def client():
            got = []
            async with aiohttp.ClientSession() as s, s.ws_connect(url + "/ws?scores=top") as ws:
                hello = json.loads((await ws.receive()).data)
                os.write(proc.stdin.fileno(), wav.read_bytes())
                proc.stdin.close()
                async for m in ws:
                    d = json.loads(m.data)
                    if d["type"] == "window":
                        got.append(d)
                    if d["type"] == "status" and d["state"] == "stopped":
                        break
            return hello, got
        hello, windows = asyncio.run(asyncio.wait_for(client(), 120))
        proc.wait(timeout=60)
    assert [s["name"] for s in hello["sources"]] == [sources[0]["name"]]
    n = len(windows)
    assert n >= 20 and [w["index"] for w in windows] == list(range(n))
    assert any(w["top"][0][0] == "Speech" for w in windows) and any(w["top"][0][0] == "Dog" for w in windows)
    assert proc.returncode == 0
    rows = [line for line in printed.read_text().splitlines() if line and not line.startswith("#")]
    assert len(rows) == n and "Speech" in rows[0]


@pytest.mark.parametrize("args, message", [
    ([], "at least one source"),
    (["--source", "x.wav", "--bind", "0.0.0.0:8765"], "give a token"),
    (["--source", "x.wav", "--bind", "8765"], "HOST:PORT"),
    (["--source", "x.wav", "--source", "x.wav"], "two sources are named 'x'"),
    (["--source", "bad name=x.wav"], "source name"),
    (["--source", "x.wav", "--token", "short", "--bind", "0.0.0.0:1"], "at least 8 characters"),
])
def test_serve_refuses_bad_options_with_one_line(args, message):
    res = CliRunner().invoke(main, ["serve", *args])
    assert res.exit_code == 1 and message in res.output and res.output.count("\n") == 1, res.output


@pytest.mark.parametrize("toml, message", [
    ('[[source]]\ninput = "x.wav"\nwindw = 1\n', "windw"),
    ('[[source]]\ninput = "x.wav"\nclips_max_gb = 1\n', "--clips"),
    ('[[source]]\ninput = "x.wav"\nalerts = ["ftp://x"]\n', "mqtt://"),
    ('[[source]]\ninput = "x.wav"\nmin_snr = 1e9\n', "--min-snr"),
    ('[server]\nport = 1\n[[source]]\ninput = "x.wav"\n', "unknown [server] key"),
    ('[[source]\n', "not valid TOML"),
])
def test_serve_refuses_a_bad_config_with_one_line(tmp_path, toml, message):
    cfg = tmp_path / "serve.toml"
    cfg.write_text(toml)
    res = CliRunner().invoke(main, ["serve", str(cfg)])
    assert res.exit_code == 1 and message in res.output and res.output.count("\n") == 1, res.output
