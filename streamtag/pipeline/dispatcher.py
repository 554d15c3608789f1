"""Hands results to subscribers in order, on its own thread; a failing subscriber never stops the others."""
from __future__ import annotations

import logging
import threading
from typing import Callable

import numpy as np

from .result import FrontEndBatch, WindowResult

log = logging.getLogger("streamtag")
Subscriber = Callable[[WindowResult], object]


class AudioTap:
    """A subscriber that also receives the stream's audio as it is written (e.g. a clip buffer): subclass it and
    implement `on_audio`. It runs on the source thread, ahead of the windows' results: it must only copy."""

    def on_audio(self, start: int, samples: np.ndarray, rate: int) -> None:
        """Samples [start, start+len(samples)) of the stream, float32 mono at `rate` (zeros for lost audio)."""
        raise NotImplementedError


class FrontEndSubscriber:
    """A subscriber that also takes each batch's front-end output: `on_frontend(FrontEndBatch)` runs on the
    worker thread before the batch's windows are published (keep it short: copy and hand off)."""

    def __call__(self, result: WindowResult) -> object:
        raise NotImplementedError

    def on_frontend(self, batch: FrontEndBatch) -> None:
        """The batch's audio and, where the front-end shares frames, its log-mel frames."""
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
        self._taps: tuple[AudioTap, ...] = tuple(cb for cb in self._items if isinstance(cb, AudioTap))
        self._frontends = tuple(cb for cb in self._items if isinstance(cb, FrontEndSubscriber))
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
            if isinstance(cb, AudioTap):
                self._taps = self._taps + (cb,)
            if isinstance(cb, FrontEndSubscriber):
                self._frontends = self._frontends + (cb,)

    def remove(self, cb: Subscriber) -> None:
        with self._lock:
            self._items = tuple(s for s in self._items if s != cb)  # == : a bound method equals its twin
            self._taps = tuple(s for s in self._taps if s != cb)
            self._frontends = tuple(s for s in self._frontends if s != cb)

    @property
    def wants_frontend(self) -> bool:
        """Whether any subscriber is a `FrontEndSubscriber` (the worker then hands out each batch's front-end)."""
        return bool(self._frontends)

    def tap(self, start: int, samples: np.ndarray, rate: int) -> None:
        """Give the stream's audio, as it is written (samples [start, start+len) at `rate`, float32 mono), to
        every subscriber that is an `AudioTap`. Called from the source thread; errors count as subscribers'."""
        for cb in self._taps:
            try:
                cb.on_audio(start, samples, rate)
            except Exception as e:  # a tap's bug must not stop the stream
                self._count(e, f"audio tap {cb!r} raised at sample {start}; it stays subscribed")

    def frontend(self, batch: FrontEndBatch) -> None:
        """Give a batch's front-end output to every `FrontEndSubscriber` (from the worker thread; errors counted)."""
        for cb in self._frontends:
            try:
                cb.on_frontend(batch)
            except Exception as e:  # a subscriber's bug must not stop the stream
                self._count(e, f"front-end subscriber {cb!r} raised at sample {batch.start_sample}; it stays subscribed")

    def _count(self, error: Exception, message: str) -> None:
        with self._lock:
            self.errors += 1
            first = self.first_error is None
            if first:
                self.first_error = error
        if first:
            log.error(message, exc_info=error)

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
