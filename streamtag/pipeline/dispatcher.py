"""Hands results to subscribers in order, on its own thread; a failing subscriber never stops the others."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from .result import FrontEndBatch, WindowResult

log = logging.getLogger("streamtag")
Subscriber = Callable[[WindowResult], object]


class FrontEndSubscriber:
    """A subscriber that also takes each batch's front-end output: `on_frontend(FrontEndBatch)` runs on the
    worker thread before the batch's windows are published (keep it short: copy and hand off)."""

    def __call__(self, result: WindowResult) -> object:
        raise NotImplementedError

    def on_frontend(self, batch: FrontEndBatch) -> None:
        raise NotImplementedError


class Subscription:
    """A subscribed callback: calling it calls the callback; `unsubscribe()` detaches it (idempotent)."""

    def __init__(self, callback: Subscriber, subscribers: "SubscriberList") -> None:
        self.callback = callback
        self._subscribers = subscribers

    def __call__(self, result: WindowResult) -> object:
        return self.callback(result)

    def unsubscribe(self) -> None:
        self._subscribers.remove(self.callback)


class SubscriberList:
    """A thread-safe, copy-on-write list of subscribers with per-subscriber error counts."""

    def __init__(self, initial: list[Subscriber] | None = None) -> None:
        self._items: tuple[Subscriber, ...] = tuple(initial or ())
        self._lock = threading.Lock()
        self.errors = 0
        self.first_error: BaseException | None = None

    @property
    def items(self) -> tuple[Subscriber, ...]:
        return self._items

    def add(self, cb: Subscriber) -> None:
        if not callable(cb):
            raise TypeError(f"subscriber must be callable, got {type(cb).__name__}")
        with self._lock:
            self._items = self._items + (cb,)

    def remove(self, cb: Subscriber) -> None:
        with self._lock:
            self._items = tuple(s for s in self._items if s != cb)  # == : a bound method equals its twin

    def publish(self, result: WindowResult) -> None:
        """Call every subscriber with `result`; exceptions are logged and counted, never raised."""
        for cb in self._items:
            try:
                cb(result)
            except Exception as e:  # a subscriber's bug must not stop the others
                with self._lock:
                    self.errors += 1
                    first = self.first_error is None
                    if first:
                        self.first_error = e
                if first:
                    log.error("subscriber %r raised on window %d; it stays subscribed, others continue",
                              cb, result.index, exc_info=e)
