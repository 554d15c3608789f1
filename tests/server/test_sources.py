"""Sources that come and go: a real RTSP server (GStreamer, run by the system python3) restarted mid-stream, and a
file that appears after the server started. The gap is counted and the source's state is visible."""
from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import soundfile as sf

from tests.helpers import DEMO_CLIP
from tests.server.conftest import running, source

RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_rtsp(port: int, path: Path) -> subprocess.Popen:
    assert shutil.which(SYSTEM_PYTHON), "the system python3 with python3-gi is needed (.ci/run installs it)"
    proc = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), str(port), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "ready", line + proc.stderr.read()
    return proc


def status(url: str) -> dict:
    async def main():
        async with aiohttp.ClientSession() as s, s.get(url + "/api/status") as r:
            return await r.json()
    return asyncio.run(main())


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow  # real time (15-27 s): runs in the full suite, not in the fresh clone's quick pass
def test_rtsp_source_is_tagged_survives_the_servers_restart_and_counts_the_gap(tmp_path):
    wav = tmp_path / "demo.wav"
    x, rate = sf.read(DEMO_CLIP, dtype="float32")
    sf.write(wav, x.mean(axis=1), rate)
    port = free_port()
    rtsp = start_rtsp(port, wav)
    windows: list[dict] = []
    try:
        with running(source(f"rtsp://127.0.0.1:{port}/audio", "cam", realtime=False)) as server:
            async def collect(stop: asyncio.Event):
                async with aiohttp.ClientSession() as s, s.ws_connect(server.url + "/ws?scores=top") as ws:
                    while not stop.is_set():
                        try:
                            m = await asyncio.wait_for(ws.receive(), 0.5)
                        except TimeoutError:
                            continue
                        d = json.loads(m.data)
                        if d["type"] == "window":
                            windows.append(d)

            async def scenario():
                stop = asyncio.Event()
                task = asyncio.ensure_future(collect(stop))
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, wait_for, lambda: len(windows) >= 16, 60, "16 windows")
                nonlocal rtsp
                rtsp.terminate()
                rtsp.wait(10)
                await asyncio.sleep(2.0)
                before = len(windows)
                rtsp = start_rtsp(port, wav)
                await loop.run_in_executor(None, wait_for, lambda: len(windows) >= before + 16, 60,
                                           "windows after the restart")
                stop.set()
                await task
            asyncio.run(scenario())
            st = status(server.url)["sources"][0]
    finally:
        rtsp.kill()
    assert st["kind"] == "network" and st["state"] == "running"
    assert st["reconnects"] >= 1 and st["lost_s"] >= 1.5, st
    labels = {label for w in windows for label, _ in w["top"][:3]}
    assert {"Speech", "Dog"} <= labels, labels
    idx = [(w["run"], w["index"]) for w in windows]
    assert idx == sorted(idx)  # in order, across the restart too


def test_a_file_that_appears_later_is_waited_for_then_tagged(tmp_path):
    path = tmp_path / "later.wav"
    with running(source(path, "later")) as server:
        st = wait_for(lambda: (s := status(server.url)["sources"][0])["state"] == "waiting" and s, 20, "waiting")
        assert "later.wav" in st["error"]
        x, rate = sf.read(DEMO_CLIP, dtype="float32")
        sf.write(tmp_path / "tmp.wav", x[: rate * 3], rate)
        (tmp_path / "tmp.wav").rename(path)
        st = wait_for(lambda: (s := status(server.url)["sources"][0])["windows"] >= 4 and s, 30, "windows")
        assert st["state"] in ("running", "ended") and st["error"] is None
        assert np.isfinite(st["latency_ms"]["p95"])
