"""A subscriber in another process: `subscribe(url)` yields the windows (as `WindowResult`s) and events a local
subscriber of `streamtag serve` gets, over its WebSocket API (the `serve` extra)."""
from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from .errors import StreamtagError
from .models.labels import Labels
from .outputs.events import Event
from .pipeline.result import WindowResult

API_VERSION = 1


class RemoteError(StreamtagError):
    """The server refused the connection, dropped this client, or speaks another API version."""


@dataclass(frozen=True)
class Opened:
    """An event that just opened (its end is not known yet)."""

    label: str
    onset_s: float


@dataclass(frozen=True)
class Received:
    """One item from a server: `item` is a `WindowResult`, an `Event` (closed), an `Opened` event or a status dict."""

    source: str
    run: int  # the source's run: window indices start again at 0 when its input came back
    item: WindowResult | Event | Opened | dict


def _url(url: str, sources, labels, scores, embeddings, status) -> str:
    base = url.rstrip("/")
    base = "ws" + base[4:] if base.startswith("http") else base
    if not base.endswith("/ws"):
        base += "/ws"
    q = [f"scores={scores}", f"embeddings={'1' if embeddings else '0'}", f"status={'1' if status else '0'}"]
    if sources:
        q.append("sources=" + ",".join(sources))
    if labels:
        q.append("labels=" + ",".join(labels))
    return base + ("&" if "?" in base else "?") + "&".join(q)


async def asubscribe(url: str, sources: list[str] | None = None, labels: list[str] | None = None,
                     scores: str = "full", embeddings: bool = True, status: bool = False,
                     token: str | None = None) -> AsyncIterator[Received]:
    """Async iterator of `Received` items from the server at `url` (http://host:port), until it closes.

    scores: "full" (every label, as a local subscriber gets), "top" or "none". embeddings: fetch each window's
    embedding (binary frames); without it `WindowResult.embedding` is an empty array. token: the server's token.
    """
    import aiohttp
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers=headers) as session:
        try:
            ws = await session.ws_connect(_url(url, sources, labels, scores, embeddings, status), max_msg_size=0)
        except aiohttp.WSServerHandshakeError as e:
            raise RemoteError(f"{url}: the server refused the connection ({e.status} {e.message})") from None
        except aiohttp.ClientError as e:
            raise RemoteError(f"{url}: cannot connect ({e})") from None
        async with ws:
            labels_of: Labels | None = None
            pending: tuple[dict, WindowResult] | None = None
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY and pending is not None:
                    body, r = pending
                    pending = None
                    yield Received(body["source"], body["run"], _with_embedding(r, msg.data))
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                body = json.loads(msg.data)
                kind = body.get("type")
                if kind == "hello":
                    if body.get("version") != API_VERSION:
                        raise RemoteError(f"{url}: the server speaks API version {body.get('version')}, this "
                                          f"client {API_VERSION}")
                    labels_of = Labels(tuple(body["labels"]["mids"]), tuple(body["labels"]["names"]))
                elif kind == "window":
                    r = _window(body, labels_of)
                    if "embedding" in body:
                        pending = (body, r)
                    else:
                        yield Received(body["source"], body["run"], r)
                elif kind == "event":
                    if body["state"] == "open":
                        item: object = Opened(body["label"], body["onset_s"])
                    else:
                        item = Event(body["label"], body["mid"], body["onset_s"], body["offset_s"], body["peak"],
                                     body["mean"], body["first_window"], body["last_window"])
                    yield Received(body["source"], body["run"], item)
                elif kind == "status":
                    yield Received(body["source"], body.get("run", 0), body)
                elif kind == "error":
                    raise RemoteError(f"{url}: {body.get('error')}")
            if ws.close_code and ws.close_code >= 4000:
                raise RemoteError(f"{url}: the server closed this client ({ws.close_code}: "
                                  f"{ws.extra or 'dropped'})")


def _window(body: dict, labels: Labels | None) -> WindowResult:
    scores = None
    if "scores" in body:
        scores = np.asarray(body["scores"], dtype=np.float32)
    start_utc = datetime.fromisoformat(body["start_utc"]) if body.get("start_utc") else None
    stream_start = None if start_utc is None else start_utc - _seconds(body["start_s"])
    return WindowResult(
        index=body["index"], start_sample=body["start_sample"], end_sample=body["end_sample"],
        start_s=body["start_s"], end_s=body["end_s"], scores=scores, embedding=np.zeros(0, np.float32),
        model=body["model"], labels=labels if labels is not None else Labels((), ()),
        lost_samples=body["lost_samples"],
        latency_s=None if body.get("latency_ms") is None else body["latency_ms"] / 1e3,
        stream_start_utc=stream_start)


def _seconds(s: float):
    from datetime import timedelta
    return timedelta(seconds=s)


def _with_embedding(r: WindowResult, data: bytes) -> WindowResult:
    from dataclasses import replace
    return replace(r, embedding=np.frombuffer(data, dtype="<f4").astype(np.float32))


def subscribe(url: str, sources: list[str] | None = None, labels: list[str] | None = None,
              scores: str = "full", embeddings: bool = True, status: bool = False,
              token: str | None = None, buffer: int = 1024) -> Iterator[Received]:
    """Iterator of `Received` items from the server at `url` (see `asubscribe`); it reads on a thread of its own
    (up to `buffer` items ahead). Closing the iterator closes the connection."""
    q: queue.Queue = queue.Queue(maxsize=buffer)
    done = object()
    stop = threading.Event()
    loop = asyncio.new_event_loop()

    async def pump() -> None:
        try:
            async for item in asubscribe(url, sources, labels, scores, embeddings, status, token):
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        await asyncio.sleep(0)
                if stop.is_set():
                    return
        except BaseException as e:  # noqa: BLE001 - raised in the consumer
            q.put(e)
            return
        q.put(done)

    task_holder: list = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(pump())
        task_holder.append(task)
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="streamtag-remote", daemon=True)
    thread.start()

    def items() -> Iterator[Received]:
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            if task_holder and not loop.is_closed():
                loop.call_soon_threadsafe(task_holder[0].cancel)
            thread.join(5)
    return items()


__all__ = ["Opened", "Received", "RemoteError", "asubscribe", "subscribe"]
