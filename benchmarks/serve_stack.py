"""Which web stack for `streamtag serve`: WebSocket fan-out of window messages to 50 clients, aiohttp against
Starlette + uvicorn (+ websockets), each server in its own process, the same aiohttp clients for both.

usage: python benchmarks/serve_stack.py [--starlette-path DIR]   (DIR: where starlette/uvicorn are installed)
Prints, per stack: seconds until every client has every message, and the server process's CPU seconds.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

CLIENTS, MESSAGES = 50, 2000
TOP = json.dumps({"type": "window", "source": "mic", "run": 0, "index": 1, "start_s": 0.5, "end_s": 1.5,
                  "top": [["Speech", 0.8123], ["Dog", 0.5], ["Animal", 0.4], ["Music", 0.1], ["Bark", 0.05]]})

AIOHTTP = f"""
import asyncio, resource, sys
from aiohttp import web
N, M, MSG = {CLIENTS}, {MESSAGES}, {TOP!r}
clients = []
async def ws(request):
    w = web.WebSocketResponse(); await w.prepare(request); q = asyncio.Queue(); clients.append(q)
    if len(clients) == N:
        for _ in range(M):
            for c in clients: c.put_nowait(MSG)
        for c in clients: c.put_nowait(None)
    while (m := await q.get()) is not None:
        await w.send_str(m)
    await w.close(); return w
async def cpu(request):
    r = resource.getrusage(resource.RUSAGE_SELF); return web.Response(text=str(r.ru_utime + r.ru_stime))
app = web.Application(); app.router.add_get("/ws", ws); app.router.add_get("/cpu", cpu)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda *a: print("ready", flush=True))
"""

STARLETTE = f"""
import asyncio, resource, sys
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
import uvicorn
N, M, MSG = {CLIENTS}, {MESSAGES}, {TOP!r}
clients = []
async def ws(w):
    await w.accept(); q = asyncio.Queue(); clients.append(q)
    if len(clients) == N:
        for _ in range(M):
            for c in clients: c.put_nowait(MSG)
        for c in clients: c.put_nowait(None)
    while (m := await q.get()) is not None:
        await w.send_text(m)
    await w.close()
async def cpu(request):
    r = resource.getrusage(resource.RUSAGE_SELF); return PlainTextResponse(str(r.ru_utime + r.ru_stime))
app = Starlette(routes=[WebSocketRoute("/ws", ws), Route("/cpu", cpu)])
print("ready", flush=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws="websockets")
"""


async def clients(port: int) -> float:
    import aiohttp
    async with aiohttp.ClientSession() as s:
        async def one():
            n = 0
            async with s.ws_connect(f"http://127.0.0.1:{port}/ws") as w:
                async for m in w:
                    n += 1
            return n
        t0 = time.perf_counter()
        counts = await asyncio.gather(*(one() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - t0
        assert counts == [MESSAGES] * CLIENTS, counts
        async with s.get(f"http://127.0.0.1:{port}/cpu") as r:
            cpu = float(await r.text())
    return elapsed, cpu


def run(name: str, code: str, port: int, path: str | None) -> None:
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = os.pathsep.join([path, env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        elapsed, cpu = asyncio.run(clients(port))
        print(f"{name:22s} {CLIENTS} clients x {MESSAGES} messages: {elapsed:6.2f} s wall, server CPU {cpu:5.2f} s "
              f"(including start-up)")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--starlette-path")
    args = ap.parse_args()
    for _ in range(2):
        run("aiohttp", AIOHTTP, 18931, None)
        run("starlette+uvicorn", STARLETTE, 18932, args.starlette_path)
