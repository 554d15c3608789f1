"""The network API against a running server: every window in order over WebSocket and SSE, 50 clients, a client
that never reads, token and Origin refusals, path traversal, and the Python client."""
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import textwrap
import time

import aiohttp
import numpy as np
import pytest
import soundfile as sf

from streamtag.errors import ConfigError
from streamtag.pipeline.tagger import Tagger
from streamtag.server.config import NetworkOptions, load_config, parse_bind
from tests.helpers import DEMO_CLIP, LABELS_CSV, MN04_WEIGHTS
from tests.server.conftest import running, source, sse_messages


def clip(tmp_path, seconds: float, name="clip.wav"):
    """`seconds` of the demo clip repeated, at 32 kHz (a file source that runs faster than real time)."""
    x, rate = sf.read(DEMO_CLIP, dtype="float32")
    x = np.tile(x.mean(axis=1), int(np.ceil(seconds * rate / len(x))))[:int(seconds * rate)]
    path = tmp_path / name
    sf.write(path, x, rate)
    return path


async def ws_read(url: str, query: str = "", until_ended: str | None = None, hold: asyncio.Event | None = None):
    """Windows a WebSocket client gets until `until_ended`'s status says ended."""
    out = []
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{url}/ws?{query}") as ws:
        if hold is not None:
            hold.set()
        async for m in ws:
            if m.type != aiohttp.WSMsgType.TEXT:
                continue
            d = json.loads(m.data)
            if d["type"] == "window":
                out.append(d)
            if d["type"] == "status" and d["state"] == "ended" and d["source"] == until_ended:
                break
    return out


async def sse_read(url: str, query: str, until: int):
    events, windows = [], []
    async with aiohttp.ClientSession() as s, s.get(f"{url}/events?{query}") as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        async for kind, d in sse_messages(r):
            (windows if kind == "window" else events).append((kind, d))
            if kind == "window" and d["index"] == until - 1:
                break
    return events, windows


def test_fifty_websocket_and_an_sse_client_get_every_window_of_a_60_s_source_in_order(tmp_path):
    path = clip(tmp_path, 60)
    with running(source(path, "clip", realtime=False), start_sources=False, client_queue=4096) as server:
        async def main():
            ready = [asyncio.Event() for _ in range(50)]
            tasks = [asyncio.ensure_future(ws_read(server.url, "scores=top", "clip", ready[i])) for i in range(50)]
            sse = asyncio.ensure_future(sse_read(server.url, "windows=1", 119))
            for e in ready:
                await e.wait()
            await asyncio.sleep(0.3)
            server.start_sources()
            return await asyncio.gather(*tasks), await sse
        results, (events, sse_windows) = asyncio.run(main())
    assert len(results) == 50
    for windows in results:
        assert [w["index"] for w in windows] == list(range(119))
        assert all(len(w["top"]) == 5 and w["lost_samples"] == 0 for w in windows)
    assert [d["index"] for _, d in sse_windows] == list(range(119))
    assert {d["label"] for k, d in events if k == "open"} >= {"Speech", "Dog"}


def test_sse_sends_events_only_by_default_with_the_label_filter(tmp_path):
    path = clip(tmp_path, 12.5)
    with running(source(path, "clip", realtime=False), start_sources=False) as server:
        async def main():
            out = []
            async with aiohttp.ClientSession() as s, s.get(f"{server.url}/events?labels=Dog") as r:
                server.start_sources()
                async for kind, d in sse_messages(r):
                    out.append((kind, d))
                    if kind == "close":
                        break
            return out
        got = asyncio.run(main())
    assert got[0][0] == "hello" and got[0][1]["version"] == 1
    assert [k for k, _ in got[1:]] == ["open", "close"]
    assert all(d["label"] == "Dog" for _, d in got[1:])
    assert 5 < got[-1][1]["onset_s"] < got[-1][1]["offset_s"]


@pytest.mark.slow  # real time (15-27 s): runs in the full suite, not in the fresh clone's quick pass
def test_a_client_that_never_reads_is_dropped_and_the_others_see_no_gap(tmp_path):
    path = clip(tmp_path, 20)
    with running(source(path, "clip"), start_sources=False, client_queue=16) as server:
        host, port = "127.0.0.1", server.port
        dead = socket.socket()
        dead.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        dead.connect((host, port))
        dead.sendall(f"GET /ws?scores=full&embeddings=1&mel=1 HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        async def main():
            ready = [asyncio.Event() for _ in range(5)]
            tasks = [asyncio.ensure_future(ws_read(server.url, "scores=full&mel=1", "clip", e)) for e in ready]
            for e in ready:
                await e.wait()
            server.start_sources()
            return await asyncio.gather(*tasks)
        results = asyncio.run(main())
        status = _get(server.url + "/api/status")
        dead.close()
    assert status["clients"]["dropped"] == {"slow": 1}
    for windows in results:
        assert [w["index"] for w in windows] == list(range(39))
    assert status["sources"][0]["latency_ms"]["p95"] < 200


def _get(url: str, **kw) -> dict:
    async def main():
        async with aiohttp.ClientSession() as s, s.get(url, **kw) as r:
            return await r.json()
    return asyncio.run(main())


def _status(url: str, **kw) -> int:
    async def main():
        async with aiohttp.ClientSession() as s, s.get(url, allow_redirects=False, **kw) as r:
            body = await r.text()
            assert "Traceback" not in body
            return r.status
    return asyncio.run(main())


def test_path_traversal_and_unknown_paths_serve_nothing(tmp_path):
    with running(source(DEMO_CLIP, "demo"), start_sources=False) as server:
        u = server.url
        assert _status(u + "/static/app.js") == 200 and _status(u + "/") == 200
        for bad in ["/static/../config.py", "/static/%2e%2e/config.py", "/static/..%2fapp.py", "/static//etc/passwd",
                    "/static/%2e%2e/%2e%2e/errors.py", "/static/", "/../streamtag/server/app.py", "/etc/passwd",
                    "/static/..\\app.py"]:
            assert _status(u + bad) == 404, bad
        raw = socket.create_connection(("127.0.0.1", server.port))
        raw.sendall(b"GET /static/../../errors.py HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = raw.recv(4096).decode(errors="replace")
        raw.close()
        assert reply.split()[1] in ("404", "400") and "StreamtagError" not in reply


def test_a_token_is_needed_on_every_request_and_the_websocket_checks_origin(tmp_path):
    token = "s3cret-token-value"
    with running(source(DEMO_CLIP, "demo"), start_sources=False, token=token) as server:
        u = server.url
        for path in ["/", "/static/app.js", "/api/status", "/api/sources", "/events", "/ws"]:
            assert _status(u + path) == 401, path
            assert _status(u + path + "?token=wrong-token-value") == 401, path
        assert _status(u + "/api/status", headers={"Authorization": f"Bearer {token}"}) == 200
        assert _status(u + f"/api/sources?token={token}") == 200

        async def ws(origin: str | None, tok: str | None):
            headers = {"Origin": origin} if origin else {}
            q = f"?token={tok}" if tok else ""
            async with aiohttp.ClientSession() as s:
                try:
                    async with s.ws_connect(f"{u}/ws{q}", headers=headers) as w:
                        return json.loads((await w.receive()).data)["type"]
                except aiohttp.WSServerHandshakeError as e:
                    return e.status
        assert asyncio.run(ws(None, None)) == 401
        assert asyncio.run(ws("http://evil.example", token)) == 403
        assert asyncio.run(ws(u, token)) == "hello"
        assert asyncio.run(ws(None, token)) == "hello"

    with pytest.raises(ConfigError, match="token"):
        NetworkOptions("0.0.0.0")


def test_page_loaded_with_a_token_sets_a_cookie_for_its_assets(tmp_path):
    token = "s3cret-token-value"
    with running(source(DEMO_CLIP, "demo"), start_sources=False, token=token) as server:
        async def main():
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:  # an IP host
                async with s.get(f"{server.url}/?token={token}") as r:
                    assert r.status == 200
                async with s.get(f"{server.url}/static/app.js") as r:
                    return r.status
        assert asyncio.run(main()) == 200


def test_remote_subscribe_in_another_process_gets_the_local_windows_exactly(tmp_path):
    """The Python client, in its own process, receives the same windows (scores and embeddings) as a Tagger run
    locally on the same file."""
    path = clip(tmp_path, 12.5)
    out = tmp_path / "remote.npz"
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from streamtag.remote import subscribe
        from streamtag.pipeline.result import WindowResult
        scores, emb, idx = [], [], []
        print("ready", flush=True)
        for got in subscribe(sys.argv[1], sources=["clip"]):
            if isinstance(got.item, WindowResult):
                idx.append(got.item.index); scores.append(got.item.scores); emb.append(got.item.embedding)
                if got.item.index == 23:
                    break
        np.savez({str(out)!r}, idx=np.array(idx), scores=np.stack(scores), emb=np.stack(emb))
    """)
    with running(source(path, "clip", realtime=False), start_sources=False) as server:
        proc = subprocess.Popen([sys.executable, "-c", script, server.url], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.time() + 30
        while _get(server.url + "/api/status")["clients"]["connected"] < 1 and time.time() < deadline:
            time.sleep(0.1)
        server.start_sources()
        assert proc.wait(timeout=60) == 0
    got = np.load(out)
    tagger = Tagger("mn04_as", 1.0, 0.5, device="cpu", weights=str(MN04_WEIGHTS), labels=str(LABELS_CSV))
    local = list(tagger.tag_file(path))
    assert list(got["idx"]) == list(range(24)) == [r.index for r in local]
    np.testing.assert_array_equal(got["scores"], np.stack([r.scores for r in local]))
    np.testing.assert_array_equal(got["emb"], np.stack([r.embedding for r in local]))


def test_config_file_and_bind(tmp_path):
    cfg = tmp_path / "serve.toml"
    cfg.write_text(textwrap.dedent("""
        [server]
        bind = "127.0.0.1:0"
        [defaults]
        model = "mn04_as"
        window = 2.0
        hop = 1.0
        [[source]]
        name = "a"
        input = "a.wav"
        realtime = true
        [[source]]
        name = "b"
        input = "rtsp://127.0.0.1:8554/x"
        on = 0.5
        off = 0.2
    """))
    c = load_config(cfg)
    assert [s.name for s in c.sources] == ["a", "b"] and c.network.port == 0
    assert c.sources[0].input == str(tmp_path / "a.wav") and c.sources[0].kind == "file"
    assert c.network.port == 0
    assert c.sources[1].kind == "network" and c.sources[1].on == 0.5 and c.sources[1].window_s == 2.0
    assert c.sources[0].model_key == c.sources[1].model_key
    cfg.write_text('[[source]]\ninput = "x.wav"\nwindw = 1\n')
    with pytest.raises(ConfigError, match="windw"):
        load_config(cfg)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    for bad in ["8765", "host:", "a:b:c"]:
        with pytest.raises(ConfigError):
            parse_bind(bad)
