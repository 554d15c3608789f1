"""`Tagger`: the Python entry point — tag files and arrays, or push audio and subscribe to results."""
from __future__ import annotations

import os
import queue
import threading
import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from ..audio.inputs import InputOptions, open_audio
from ..audio.sources import ArraySource, AudioSource, as_float_samples
from ..errors import ConfigError
from ..models.labels import Labels, load_labels
from ..models.loader import (DefaultModelFallback, Loaded, ModelChoice, RunTarget, ShortWindowWarning, emit_notices,
                             load)
from ..models.spec import ModelSpec
from .backend import Backend, default_batch_size
from .dispatcher import Subscriber, SubscriberList, Subscription
from .result import TaggerStats, WindowResult
from .stream import POLL_S, Stream

if TYPE_CHECKING:
    from ..models.head import Head
    from ..models.interface import RunnableModel

_END = object()


def open_backend(loaded: Loaded, target: RunTarget) -> Backend:
    """The runner for a loaded model: the export's (numpy, no torch) or the torch model's on its device."""
    if not loaded.model.needs_torch:
        from .export_runner import ExportRunner
        return ExportRunner(loaded.model)
    from .runner import ModelRunner
    return ModelRunner(loaded.model, target, loaded.runtime)


class Tagger:
    """Tags audio window by window and publishes a `WindowResult` per window, in order.

    model: a registry name ("a,b" an ensemble), a `ModelSpec`, a `ModelChoice`, an already built model, or None for
    the default (mn10_as, falling back to the bundled mn04_as offline with a warning). window/hop in seconds
    (default 10 / 2.5, or the head's). weights: a checkpoint for the named model ("fileA,fileB" for an ensemble).
    head: a head file (`streamtag train`) whose classes replace the model's scores ("replace") or follow them
    ("append"); the model defaults to the head's backbone. target (or its fields as keywords: device, precision,
    runtime, frames, optimize): where and how the network runs (`models.RunTarget`). An exportable model in fp32 on
    the CPU runs without torch: numpy front-end and the OpenVINO export, made and cached at its first use.
    """

    def __init__(self, model: "str | ModelSpec | ModelChoice | RunnableModel | None" = None,
                 window: float | None = None, hop: float | None = None, *, weights: str | os.PathLike | None = None,
                 labels: str | os.PathLike | Labels | None = None, head: "str | os.PathLike | Head | None" = None,
                 head_mode: str = "replace", batch_size: int | None = None, ring_seconds: float | None = None,
                 target: RunTarget | None = None, **run: Any) -> None:
        target = target if target is not None else RunTarget(**run)
        head_path = head.info.path if head is not None and not isinstance(head, (str, os.PathLike)) else head
        built = None if model is None or isinstance(model, (str, ModelSpec, ModelChoice)) else model
        if isinstance(model, ModelChoice):
            if weights is not None or head is not None:
                raise ConfigError("weights= and head= belong in the ModelChoice given as model=")
            choice = model
        else:
            choice = ModelChoice.parse(None if built is not None else model, weights, head_path, head_mode)
        labels = labels if isinstance(labels, Labels) else load_labels(labels)
        loaded = load(choice, labels, target, window, hop, ring_seconds=ring_seconds, model=built)
        emit_notices(loaded)
        self.model, self.labels, self.window, self.target = loaded.model, loaded.labels, loaded.window, target
        self.spec = self.model.spec
        self.model_name = self.spec.name
        self.runner: Backend = open_backend(loaded, target)
        self.device = self.runner.device
        self.batch_size = default_batch_size(self.device, self.window.window_s) if batch_size is None else batch_size
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.ring_seconds = ring_seconds
        self._subscribers = SubscriberList()
        self._stream: Stream | None = None
        self._source: AudioSource | None = None
        self._lock = threading.Lock()
        self._dropped: weakref.finalize | None = None

    @property
    def sample_rate(self) -> int:
        """The model's input rate; sources are resampled to it."""
        return self.model.sample_rate

    def warm_up(self) -> None:
        """Run one silent window through the model now (freezing it), so a live run's first windows are not late."""
        self.runner.infer(np.zeros((1, self.window.window), np.float32))

    # -- subscribers -------------------------------------------------------------------
    def subscribe(self, callback: Subscriber) -> Subscription:
        """Call `callback(result)` for every window of this and every later run, in order, until unsubscribed.

        Returns a `Subscription` (callable like the callback, so usable as a decorator) whose
        `unsubscribe()` detaches it.
        """
        self._subscribers.add(callback)
        return Subscription(callback, self._subscribers)

    def unsubscribe(self, callback: Subscriber | Subscription) -> None:
        """Detach a callback (or the `Subscription` `subscribe` returned); unknown ones are ignored."""
        self._subscribers.remove(callback.callback if isinstance(callback, Subscription) else callback)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, source: AudioSource | None = None, live: bool = False) -> "Tagger":
        """Start a run on `source`, or on an `ArraySource` fed through `feed()` when None."""
        with self._lock:
            self._ensure_idle()
            self._source = source if source is not None else ArraySource(live=live)
            self._stream = self._new_stream(self._source, self._subscribers)
            self._stream.start()
        return self

    def _ensure_idle(self) -> None:
        if self._stream is not None and not self._stream.done:
            raise ConfigError("this Tagger is already running; stop() or join() it first")

    def _new_stream(self, source: AudioSource, subscribers: SubscriberList, on_finish=None) -> Stream:
        stream = Stream(source, self.runner, self.window, self.batch_size, subscribers, self.labels,
                        self.model_name, self.ring_seconds, on_finish)
        if self._dropped is not None:
            self._dropped.detach()
        self._dropped = weakref.finalize(self, stream.stop)  # a Tagger dropped mid-run stops its run
        return stream

    def feed(self, samples: np.ndarray, sample_rate: int) -> None:
        """Push audio ([frames] or [frames, channels]; float, or integer PCM scaled as soundfile does) into the
        running push stream (starts one if needed)."""
        samples = as_float_samples(samples)
        if self._stream is None or self._stream.done:
            self.start()
        if not isinstance(self._source, ArraySource):
            raise ConfigError("feed() needs a run started without a source")
        if self._stream.error is not None:
            raise self._stream.error
        self._source.feed(samples, sample_rate)

    def end(self) -> None:
        """Mark the end of pushed audio; the last windows are zero-padded and published."""
        if isinstance(self._source, ArraySource):
            self._source.end()

    def stop(self, wait: float = 0.0) -> None:
        """Stop the current run now; idempotent, safe from a subscriber, never hangs.

        `wait` > 0 also waits up to that many seconds for the threads to end (not from a subscriber).
        """
        if self._stream is not None:
            self._stream.stop()
            if wait > 0:
                self._stream.wait(wait)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the current run to finish; re-raises an error from any pipeline thread."""
        return True if self._stream is None else self._stream.join(timeout)

    def run(self, source: AudioSource) -> TaggerStats:
        """Tag `source` to the end, publishing to subscribers; returns the run's stats."""
        self.start(source)
        try:
            self.join()
        finally:
            self.stop(wait=10.0)  # e.g. after Ctrl-C: threads leave native code before the process exits
        return self.stats

    @property
    def stats(self) -> TaggerStats:
        """Totals of the current or last run."""
        return self._stream.stats() if self._stream is not None else TaggerStats()

    def __enter__(self) -> "Tagger":
        if self._stream is None or self._stream.done:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.stop()
            try:
                self.join()
            except Exception:
                pass  # the original exception is the one to see
            return
        self.end()
        try:
            self.join()
        finally:
            self.stop()

    # -- iterators ---------------------------------------------------------------------
    def tag_file(self, path: str | os.PathLike, options: InputOptions = InputOptions(),
                 start_utc: datetime | None = None) -> Iterator[WindowResult]:
        """Results of every window of an audio file or URL, in order (opened and checked now; libsndfile reads
        what it can, FFmpeg the rest). `start_utc`: the recording's wall-clock start, for `WindowResult.start_utc`."""
        return self.iter_source(open_audio(path, options, start_utc=start_utc))

    def tag_array(self, samples: np.ndarray, sample_rate: int) -> Iterator[WindowResult]:
        """Results of every window of an in-memory signal ([frames] or [frames, channels]; float or integer PCM)."""
        src = ArraySource(sample_rate)
        samples = as_float_samples(samples)  # checked here: the feeding thread cannot report it
        if samples.size == 0:
            raise ConfigError("cannot tag an empty array")

        def feed() -> None:
            try:
                src.feed(samples, sample_rate)
                src.end()
            except ConfigError:
                pass  # the stream stopped first
        threading.Thread(target=feed, name="streamtag-feed", daemon=True).start()
        return self.iter_source(src)

    def iter_source(self, source: AudioSource) -> Iterator[WindowResult]:
        """Run `source` and yield its results in order; closing the iterator early stops the run."""
        with self._lock:
            self._ensure_idle()
            q: queue.Queue = queue.Queue(maxsize=64)
            gone = threading.Event()  # the consumer closed the iterator

            def push(item) -> None:
                while not gone.is_set():
                    try:
                        q.put(item, timeout=POLL_S)
                        return
                    except queue.Full:
                        continue

            subs = SubscriberList([push, *self._subscribers.items])
            stream = self._new_stream(source, subs, on_finish=lambda: push(_END))
            self._source, self._stream = source, stream
            stream.start()
        return self._drain(stream, q, gone)

    def _drain(self, stream: Stream, q: queue.Queue, gone: threading.Event) -> Iterator[WindowResult]:
        # a method, not a static one: the iterator keeps its Tagger (whose collection stops the run) alive
        try:
            while True:
                item = q.get()
                if item is _END:
                    break
                yield item
        finally:
            gone.set()
            if not stream.done:
                stream.stop()
                stream.wait()
        stream.join()  # re-raises the error that ended the run, if any


__all__ = ["DefaultModelFallback", "ShortWindowWarning", "Tagger", "open_backend"]
