"""The server: an aiohttp application (dashboard, WebSocket `/ws`, SSE `/events`, REST `/api/...`) fed by the
sources' pipelines. Every client has a bounded queue; one that falls behind is dropped (counted), never waited for.
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import resource
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import numpy as np
from aiohttp import WSMsgType, web

from ..errors import ConfigError
from ..models.labels import Labels, load_labels
from ..outputs.events import EventSettings
from ..pipeline.tagger import Tagger
from .config import API_VERSION, NetworkOptions, ServeConfig
from .detections import Detections, Query
from .hub import MEL_BANDS, Message, SourceHub, event_dict  # noqa: F401 - event_dict re-exported for the client
from .runner import AttachedSource, ModelPool, SourceRunner

log = logging.getLogger("streamtag.server")
STATIC = Path(__file__).resolve().parent / "static"
STATUS_EVERY_S = 1.0
DRAIN_S = 2.0  # at stop, time the clients get to take what is queued for them
COOKIE = "streamtag_token"
SCORE_MODES = ("top", "full", "none")


class Client:
    """One subscriber connection: what it asked for, and its bounded queue of encoded frames."""

    def __init__(self, kind: str, size: int, sources: set[str] | None = None, labels: set[str] | None = None,
                 scores: str = "top", top_k: int = 5, embeddings: bool = False, mel: bool = False,
                 windows: bool = True, events: bool = True, status: bool = True) -> None:
        self.kind = kind
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=size)
        self.sources, self.labels, self.scores, self.top_k = sources, labels, scores, top_k
        self.embeddings, self.mel, self.windows, self.events, self.status = embeddings, mel, windows, events, status
        self.dropped: str | None = None
        self.transport: asyncio.Transport | None = None  # aborted when the client is dropped as too slow

    def configure(self, msg: dict) -> None:
        """Apply a `subscribe` message; ValueError on a bad field."""
        def names(v):
            if v is None:
                return None
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ValueError("sources and labels are lists of names (or null for all)")
            return set(v)
        if "sources" in msg:
            self.sources = names(msg["sources"])
        if "labels" in msg:
            self.labels = names(msg["labels"])
        if "scores" in msg:
            if msg["scores"] not in SCORE_MODES:
                raise ValueError(f"scores is one of {', '.join(SCORE_MODES)}")
            self.scores = msg["scores"]
        if "top_k" in msg:
            if not isinstance(msg["top_k"], int) or not 1 <= msg["top_k"] <= 50:
                raise ValueError("top_k is an integer from 1 to 50")
            self.top_k = msg["top_k"]
        for key in ("embeddings", "mel", "windows", "events", "status"):
            if key in msg:
                if not isinstance(msg[key], bool):
                    raise ValueError(f"{key} is true or false")
                setattr(self, key, msg[key])

    def wants(self, m: Message) -> bool:
        if self.sources is not None and m.source not in self.sources:
            return False
        if m.kind == "window":
            return self.windows
        if m.kind == "event":
            return self.events and (self.labels is None or m.payload["label"] in self.labels)
        if m.kind == "mel":
            return self.mel
        return self.status


def window_json(source: str, run: int, r, level: float | None, scores: str, top_k: int,
                labels: set[str] | None, embedding: bool) -> dict:
    """The API's window message (see docs/api-network.md)."""
    out = {"type": "window", "source": source, "run": run, "index": r.index, "start_sample": r.start_sample,
           "end_sample": r.end_sample, "start_s": r.start_s,
           "end_s": r.end_s, "start_utc": None if r.start_utc is None else r.start_utc.isoformat(),
           "model": r.model, "lost_samples": r.lost_samples,
           "latency_ms": None if r.latency_s is None else round(r.latency_s * 1e3, 3),
           "level_db": None if level is None else round(level, 2)}
    if r.scores is not None:
        if labels is not None:
            names = r.labels.names
            out["labels"] = {names[i]: float(r.scores[i]) for i in range(len(names)) if names[i] in labels}
        elif scores == "top":
            out["top"] = [[n, s] for n, s in r.top(top_k)]
        elif scores == "full":
            out["scores"] = [float(x) for x in r.scores]
    if embedding:
        out["embedding"] = {"dim": int(r.embedding.shape[0]), "dtype": "float32<"}
    return out


class Server:
    """`streamtag serve` from Python: `start()` binds and starts every source (returns once bound), `stop()` ends
    all. `url` is where it listens (with port 0 the port is chosen at start)."""

    runners: dict[str, SourceRunner | AttachedSource]

    def __init__(self, config: ServeConfig) -> None:
        labels = load_labels(config.labels)
        pool = ModelPool(labels, config.target)
        self._setup(config.network, labels, pool)
        self.runners = {s.name: SourceRunner(s, pool, self._post) for s in config.sources}
        self.detections = Detections(config.sources)

    @classmethod
    def attached(cls, tagger: Tagger, network: NetworkOptions, name: str, kind: str, input: str,
                 events: EventSettings = EventSettings()) -> Server:
        """A server for one pipeline its caller runs (`listen --serve`): `start()` before the Tagger starts."""
        server = cls.__new__(cls)
        server._setup(network, tagger.labels, None)
        server.runners = {name: AttachedSource(tagger, name, kind, input, server._post, events)}
        server.detections = Detections(())
        return server

    def _setup(self, network: NetworkOptions, labels: Labels, pool: ModelPool | None) -> None:
        self.network, self.labels, self.pool = network, labels, pool
        self.runners = {}
        self.clients: set[Client] = set()
        self.dropped = Counter()  # reason -> clients dropped
        self.port = network.port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._site_runner: web.AppRunner | None = None
        self.started = time.time()

    @property
    def url(self) -> str:
        host = self.network.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, sources: bool = True) -> Server:
        self._thread = threading.Thread(target=self._serve, name="streamtag-server", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        if sources:
            self.start_sources()
        return self

    def start_sources(self) -> None:
        """Start every source's pipeline (`start(sources=False)` binds first, e.g. to connect clients before)."""
        for r in self.runners.values():
            r.start()

    def stop(self) -> None:
        for r in self.runners.values():
            r.stop()
        for r in self.runners.values():
            r.join(15)
        if self.loop is not None and self._stopping is not None:
            self.loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(15)
        self.detections.close()

    def wait(self) -> None:
        """Block until stopped (Ctrl-C in the caller stops it)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as e:  # noqa: BLE001 - reaches start()
            self._error = e if isinstance(e, ConfigError) else ConfigError(
                f"cannot serve on {self.network.host}:{self.network.port}: {getattr(e, 'strerror', None) or e}")
            self._ready.set()
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        app = self.app()
        self._site_runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._site_runner.setup()
        site = web.TCPSite(self._site_runner, self.network.host, self.network.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._ready.set()
        ticker = asyncio.ensure_future(self._status_ticker())
        await self._stopping.wait()
        ticker.cancel()
        deadline = time.monotonic() + DRAIN_S  # the sources' last windows and states reach the clients
        while any(not c.queue.empty() for c in self.clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for c in list(self.clients):
            self._drop(c, None)
        await self._site_runner.cleanup()

    # -- from the pipelines ------------------------------------------------------------
    def _post(self, m: Message) -> None:
        """Called from pipeline threads: hand the message to the loop, never wait."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._fanout, m)
            except RuntimeError:
                pass  # the loop closed meanwhile

    def _fanout(self, m: Message) -> None:
        cache: dict = {}
        for c in list(self.clients):
            if c.dropped or not c.wants(m):
                continue
            frames = self._encode(m, c, cache)
            for f in frames:
                try:
                    c.queue.put_nowait(f)
                except asyncio.QueueFull:
                    self._drop(c, "slow")
                    break

    def _encode(self, m: Message, c: Client, cache: dict) -> list:
        """The frames for client `c` (encodings shared between clients that asked for the same)."""
        if m.kind == "window":
            r, level = m.payload
            key = ("w", c.scores, c.top_k, None if c.labels is None else frozenset(c.labels), c.embeddings,
                   c.kind)
            if key not in cache:
                body = window_json(m.source, m.run, r, level, c.scores, c.top_k, c.labels, c.embeddings)
                frames = [self._text(c.kind, "window", body)]
                if c.embeddings and c.kind == "ws":
                    frames.append(np.ascontiguousarray(r.embedding, dtype="<f4").tobytes())
                cache[key] = frames
            return cache[key]
        key = (m.kind, c.kind)
        if key not in cache:
            if m.kind == "event":
                body = {"type": "event", "source": m.source, "run": m.run, **m.payload}
            elif m.kind == "mel":
                first, cols = m.payload
                body = {"type": "mel", "source": m.source, "run": m.run, "first_frame": int(first),
                        "bands": int(cols.shape[0]), "frames": int(cols.shape[1]),
                        "data": base64.b64encode(np.ascontiguousarray(cols.T).tobytes()).decode("ascii")}
            else:
                body = {"type": "status", "source": m.source, **m.payload}
            cache[key] = [self._text(c.kind, m.kind if m.kind != "event" else m.payload["state"], body)]
        return cache[key]

    @staticmethod
    def _text(kind: str, event: str, body: dict) -> str:
        data = json.dumps(body, separators=(",", ":"), allow_nan=False, default=_plain)
        return data if kind == "ws" else f"event: {event}\ndata: {data}\n\n"

    def _drop(self, c: Client, reason: str | None) -> None:
        if c.dropped:
            return
        c.dropped = reason or "closed"
        if reason:
            self.dropped[reason] += 1
            log.warning("a %s client was dropped: %s", c.kind, reason)
        self.clients.discard(c)
        if reason and c.transport is not None and self.loop is not None:
            self.loop.call_later(2.0, c.transport.abort)  # its writer may wait on a full socket: end it
        while True:  # wake its writer: the queue holds only the stop marker now
            try:
                c.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
        c.queue.put_nowait(None)

    async def _status_ticker(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            for name, runner in self.runners.items():
                self._fanout(Message("status", name, runner.hub.run, runner.status()))

    # -- the application ---------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._auth], client_max_size=1 << 16)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name:.*}", self._static)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/events", self._sse)
        app.router.add_get("/api", self._api_index)
        app.router.add_get("/api/sources", self._api_sources)
        app.router.add_get("/api/status", self._api_status)
        app.router.add_get("/api/detections", self._api_detections)
        app.router.add_get(r"/api/clips/{id:\d{1,18}}", self._api_clip)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        """Errors as one JSON line, never a traceback (that goes to the log)."""
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status < 400 or request.path.startswith("/static/"):
                raise
            return web.json_response({"error": e.reason}, status=e.status)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("error serving %s", request.path)
            return web.json_response({"error": "internal error"}, status=500)

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        """With a token: every request carries it (Authorization: Bearer, ?token= or the cookie the page sets)."""
        token = self.network.token
        if token is None:
            return await handler(request)
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() \
            or request.query.get("token", "") or request.cookies.get(COOKIE, "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise web.HTTPUnauthorized(reason="a valid token is required")
        response = await handler(request)
        if request.query.get("token") and request.path == "/" and isinstance(response, web.StreamResponse):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response

    def _origin_ok(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser: the token (when required) is the check
        if origin in self.network.allowed_origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == request.host

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers=_NO_SNIFF)

    async def _static(self, request: web.Request) -> web.StreamResponse:
        """A file of the package's static folder, nothing outside it."""
        name = request.match_info["name"]
        path = (STATIC / name).resolve()
        if not name or ".." in Path(name).parts or not path.is_relative_to(STATIC) or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers=_NO_SNIFF)

    async def _api_index(self, request: web.Request) -> web.Response:
        endpoints = ["/ws", "/events", "/api/sources", "/api/status"]
        if self.detections.configured:
            endpoints += ["/api/detections", "/api/clips/{id}"]
        return web.json_response({"version": API_VERSION, "endpoints": endpoints})

    async def _api_detections(self, request: web.Request) -> web.Response:
        """Stored events (the sources' `store`): ?label=&since=&until=&source=&limit= (the latest, oldest first)."""
        if not self.detections.configured:
            raise web.HTTPNotFound(reason="no source stores its events (store = FILE in the config)")
        try:
            q = Query.from_params(request.query)
            events = await asyncio.get_running_loop().run_in_executor(None, self.detections.events, q)
        except ConfigError as e:
            raise web.HTTPBadRequest(reason=str(e))
        return web.json_response({"version": API_VERSION, "events": events})

    async def _api_clip(self, request: web.Request) -> web.StreamResponse:
        """A stored event's FLAC clip, only from its source's clips folder (404 for anything else)."""
        event_id = int(request.match_info["id"])
        source = request.query.get("source") or None
        path = await asyncio.get_running_loop().run_in_executor(None, self.detections.clip, event_id, source)
        if path is None:
            raise web.HTTPNotFound(reason="no such clip")
        return web.FileResponse(path, headers={**_NO_SNIFF, "Content-Type": "audio/flac"})

    def _sources(self) -> list[dict]:
        out = []
        for r in self.runners.values():
            s = r.status()
            out.append({k: s[k] for k in ("name", "kind", "input", "model", "window_s", "hop_s", "state")})
        return out

    async def _api_sources(self, request: web.Request) -> web.Response:
        return web.json_response({"version": API_VERSION, "sources": self._sources()})

    async def _api_status(self, request: web.Request) -> web.Response:
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return web.json_response({
            "version": API_VERSION, "uptime_s": round(time.time() - self.started, 1),
            "sources": [r.status() for r in self.runners.values()],
            "clients": {"connected": len(self.clients), "dropped": dict(self.dropped)},
            "models_loaded": self.pool.loaded if self.pool is not None else 1, "max_rss_mb": round(rss_mb, 1)})

    def _hello(self) -> dict:
        return {"type": "hello", "version": API_VERSION, "sources": self._sources(),
                "labels": {"names": list(self.labels.names), "mids": list(self.labels.mids)},
                "mel_bands": MEL_BANDS}

    def _client_from_query(self, kind: str, q) -> Client:
        c = Client(kind, self.network.client_queue)
        msg: dict = {}
        if "sources" in q:
            msg["sources"] = [s for s in q["sources"].split(",") if s]
        if "labels" in q:
            msg["labels"] = [s for s in q["labels"].split(",") if s]
        for key in ("scores",):
            if key in q:
                msg[key] = q[key]
        if "top_k" in q:
            msg["top_k"] = int(q["top_k"]) if q["top_k"].isdigit() else -1
        for key in ("embeddings", "mel", "windows", "events", "status"):
            if key in q:
                msg[key] = q[key] in ("1", "true", "yes")
        c.configure(msg)
        return c

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_ok(request):
            raise web.HTTPForbidden(reason="this origin may not connect")
        try:
            client = self._client_from_query("ws", request.query)
        except ValueError as e:
            raise web.HTTPBadRequest(reason=str(e))
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=1 << 16)
        _bound_send_buffer(request)
        await ws.prepare(request)
        await ws.send_str(json.dumps(self._hello()))
        client.transport = request.transport
        self.clients.add(client)
        writer = asyncio.ensure_future(self._write_ws(ws, client))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    body = json.loads(msg.data)
                    if not isinstance(body, dict) or body.get("type") != "subscribe":
                        raise ValueError("send {\"type\": \"subscribe\", ...}")
                    client.configure(body)
                    await ws.send_str(json.dumps({"type": "subscribed", **_settings(client)}))
                except ValueError as e:
                    await ws.send_str(json.dumps({"type": "error", "error": str(e)}))
        finally:
            self._drop(client, None)
            await writer
            await ws.close()
        return ws

    async def _write_ws(self, ws: web.WebSocketResponse, client: Client) -> None:
        try:
            while True:
                frame = await client.queue.get()
                if frame is None:
                    break
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            if client.dropped and client.dropped != "closed":
                await ws.close(code=4008, message=f"dropped: {client.dropped}".encode())

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        try:
            client = self._client_from_query("sse", request.query)
        except ValueError as e:
            raise web.HTTPBadRequest(reason=str(e))
        client.windows = client.windows and "windows" in request.query  # events only, unless asked
        client.status = "status" in request.query and client.status
        _bound_send_buffer(request)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        await resp.write(f"event: hello\ndata: {json.dumps({'version': API_VERSION})}\n\n".encode())
        client.transport = request.transport
        self.clients.add(client)
        try:
            while True:
                frame = await client.queue.get()
                if frame is None:
                    break
                await resp.write(frame.encode())
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self._drop(client, None)
        return resp


_NO_SNIFF = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


SEND_BUFFER = 128 * 1024  # bytes the kernel holds for a client (not auto-tuned to megabytes): then its queue fills


def _bound_send_buffer(request: web.Request) -> None:
    """Bound what a client that stopped reading can hold in the kernel, so that its queue (and drop) tells."""
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            pass


def _settings(c: Client) -> dict:
    return {"sources": None if c.sources is None else sorted(c.sources),
            "labels": None if c.labels is None else sorted(c.labels), "scores": c.scores, "top_k": c.top_k,
            "embeddings": c.embeddings, "mel": c.mel, "windows": c.windows, "events": c.events,
            "status": c.status}


def _plain(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


def serve(config: ServeConfig, notice: Callable[[str], None] | None = None) -> None:
    """Run a server until Ctrl-C (or SIGTERM); `notice` hears where it listens and what it tags."""
    server = Server(config).start()
    try:
        if notice is not None:
            notice(f"serving {len(config.sources)} source(s) on {server.url}/ (API v{API_VERSION}): "
                   + ", ".join(f"{s.name} ({s.kind} {s.input})" for s in config.sources))
        server.wait()
    finally:
        server.stop()


__all__ = ["Server", "serve"]
