"""One run of the pipeline: source thread -> ring -> worker (front-end) -> network threads -> dispatcher."""
from __future__ import annotations

import atexit
import bisect
import queue
import signal
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..audio.levels import StreamLevels
from ..audio.ring import RingBuffer, RingClosed
from ..audio.sources import AudioSource, Gap
from ..models.labels import Labels
from ..models.mel import FrameCache
from ..models.pending import PendingNetwork
from ..windows import WindowScheduler, WindowSpec
from ..memory import check_run_memory, ring_samples
from .dispatcher import SubscriberList
from .result import FrontEndBatch, TaggerStats, WindowResult

if TYPE_CHECKING:
    from .backend import Backend

_END = object()
POLL_S = 0.1  # how often blocked threads look at the stop flag
EXIT_WAIT_S = 30.0  # at exit, how long running streams get to stop (a first-batch export cannot be cut short)

_running: "weakref.WeakSet[Stream]" = weakref.WeakSet()
_exit_hook = threading.Lock()
_exit_hook_installed = False


def _stop_running_streams() -> None:
    """At interpreter exit: stop every stream still running and let its threads leave native code (a thread
    killed inside torch or OpenVINO aborts the process)."""
    streams = list(_running)
    for stream in streams:
        stream.stop()
    deadline = time.monotonic() + EXIT_WAIT_S
    for stream in streams:
        stream.wait(max(0.0, deadline - time.monotonic()))


def _main_thread_takes_signals() -> None:
    """Block Ctrl-C and termination signals in this pipeline thread (and the native threads torch and
    OpenVINO start from it), so the kernel delivers them to the main thread, where Python handles them; a
    signal landing in a native worker's wait could abort the process at exit."""
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, PIPELINE_BLOCKED_SIGNALS)
    except (AttributeError, OSError, ValueError):
        pass  # no POSIX signal masks (Windows)


PIPELINE_BLOCKED_SIGNALS = {s for s in (signal.Signals.__members__.get(n) for n in ("SIGINT", "SIGTERM", "SIGHUP"))
                            if s is not None}


@dataclass(frozen=True)
class PreparedBatch:
    """A batch of windows whose front-end has run: its number in the stream, the windows' indices and lost samples,
    the samples written when it was taken, and its pending network."""

    number: int
    indices: tuple[int, ...]
    lost: tuple[int, ...]
    available: int
    pending: PendingNetwork
    levels: tuple[tuple[float, float], ...] = ()  # (dBFS RMS, A-weighted dBFS) of each window


def _track(stream: "Stream") -> None:
    global _exit_hook_installed
    with _exit_hook:
        if not _exit_hook_installed:
            atexit.register(_stop_running_streams)
            _exit_hook_installed = True
        _running.add(stream)


class Stream:
    """Threads and buffers of one stream; results go to `subscribers` in window order.

    File and array sources wait when the ring is full (nothing dropped); live sources
    overwrite and every affected window carries its count of lost samples. The first
    exception in any thread stops all of them; the results finished before it are still
    published, in order, and `join()` re-raises it. A `stop()` drops unpublished results.
    """

    def __init__(self, source: AudioSource, runner: "Backend", spec: WindowSpec, batch_size: int,
                 subscribers: SubscriberList, labels: Labels, model_name: str,
                 ring_seconds: float | None = None, on_finish: Callable[[], None] | None = None) -> None:
        self.source = source
        self.runner = runner
        self.spec = spec
        self.labels = labels
        self.model_name = model_name
        self.subscribers = subscribers
        self.live = source.live
        source.on_native = subscribers.tap_source  # a source's audio before resampling, where it gives it (taps)
        length = source.length(spec.rate)
        if length is not None:  # a file: no batch needs more windows than it has
            batch_size = max(1, min(batch_size, spec.total(length)))
        check_run_memory(spec, batch_size, ring_seconds)
        self.scheduler = WindowScheduler(spec, batch_size, grid=not self.live)
        self.ring = RingBuffer(ring_samples(spec, batch_size, ring_seconds, self.live))
        self._queue: queue.Queue = queue.Queue(maxsize=8)  # results, to the dispatcher
        self._prepared: queue.Queue = queue.Queue(maxsize=1)  # front-ends run, to the network threads
        # a pipelined runner's networks run in threads of their own, beside the next batch's front-end: as many
        # as its network runs at once for files, one for live input (windows one at a time, in order); else none
        self._network_threads = (0 if not runner.pipelined else 1 if self.live else runner.network_threads)
        self._batches = 0  # batches taken so far: the next one's number
        self._stop = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        self._source_error: Exception | None = None  # the source failed: raised once its windows are out
        self._on_finish = on_finish
        self._frame_cache = FrameCache()  # the front-end's frames of the last batch, for the next
        self._levels = StreamLevels(spec.window, spec.hop, spec.rate)  # blocks' A-weighted power, for the next
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=4096)  # (samples written, time)
        # frame starts within a window (s): the same for every window
        self._frame_offsets = (np.asarray(runner.model.frame_times(spec.window), np.float64) if runner.frames
                               else None)
        self._windows = 0
        self._lossy = 0
        self._t0 = 0.0
        self._t1: float | None = None
        self._threads = [
            threading.Thread(target=self._guard(self._read_source), name="streamtag-source", daemon=True),
            threading.Thread(target=self._guard(self._infer), name="streamtag-worker", daemon=True),
            *(threading.Thread(target=self._guard(self._run_networks), name=f"streamtag-network-{i}", daemon=True)
              for i in range(self._network_threads)),
            threading.Thread(target=self._dispatch, name="streamtag-dispatch", daemon=True),
        ]
        self._producers = self._threads[1:-1]  # the threads that put results for the dispatcher: worker, networks

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._t0 = time.monotonic()
        _track(self)
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Ask every thread to stop; idempotent, safe from any thread, never blocks. No subscriber is called after
        it (from a subscriber: none after the one calling it, not even for the same window)."""
        self._stop.set()
        self.ring.abort()
        try:
            self.source.close()
        except Exception:  # closing a broken device must not mask the stop
            pass

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end (True if it did); re-raises the first thread error."""
        finished = self.wait(timeout)
        if self._error is not None:
            raise self._error
        return finished

    def wait(self, timeout: float | None = 10.0) -> bool:
        """Join the threads without raising (after stop(): lets the worker leave native code before exit)."""
        me = threading.current_thread()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            if t is not me and t.ident is not None:
                t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads if t is not me)

    def _discarding(self) -> bool:
        """Stopped by `stop()`, not by an error: finished results are dropped, not published."""
        return self._stop.is_set() and self._error is None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        return self._error

    def stats(self) -> TaggerStats:
        end = self._t1 if self._t1 is not None else time.monotonic()
        return TaggerStats(
            windows=self._windows, samples=self.ring.written,
            lost_samples=self.ring.overwritten + self.ring.gap_samples,
            lossy_windows=self._lossy, subscriber_errors=self.subscribers.errors,
            device_overflows=self.source.overflows, nonfinite_samples=self.source.nonfinite,
            elapsed_s=max(0.0, end - self._t0) if self._t0 else 0.0,
            audio_s=self.ring.written / self.spec.rate)

    # -- threads -----------------------------------------------------------------------
    def _guard(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            _main_thread_takes_signals()
            try:
                body()
            except RingClosed:
                pass  # stop() woke us
            except BaseException as e:  # noqa: BLE001 - every failure must reach the caller
                with self._error_lock:
                    if self._error is None and not self._stop.is_set():
                        self._error = e
                self.stop()
        return run

    def _read_source(self) -> None:
        """Move the source's blocks into the ring. A source that fails ends the stream like its end, except that
        no zero-padded window follows: the windows before the failure are published, then `join` raises it."""
        try:
            for block in self.source.blocks(self.spec.rate):
                if self._stop.is_set():
                    return
                if isinstance(block, Gap):
                    start = self.ring.written
                    self.ring.write_gap(block.samples, block=not self.live)
                    self.subscribers.tap(start, np.zeros(block.samples, np.float32), self.spec.rate)
                else:
                    start = self.ring.written
                    self.ring.write(block, block=not self.live)
                    self.subscribers.tap(start, block, self.spec.rate)
                if self.live:  # for latency_s
                    self._arrivals.append((self.ring.written, time.monotonic()))
        except RingClosed:
            raise
        except Exception as e:  # noqa: BLE001 - reaches the caller after the windows before it
            if not self._stop.is_set():
                self._source_error = e
        finally:
            self.ring.close()

    def _arrival_time(self, sample_end: int) -> float | None:
        arrivals = list(self._arrivals)
        i = bisect.bisect_left(arrivals, (sample_end, -1.0))
        return arrivals[i][1] if i < len(arrivals) else None

    def _infer(self) -> None:
        """Take each batch of windows from the ring and run its front-end; its network runs in a network
        thread (a pipelined runner) or here, right after."""
        spec, ring, sched = self.spec, self.ring, self.scheduler
        try:
            while not self._stop.is_set():
                while not ring.wait_for(sched.needed(), POLL_S) and not ring.closed:
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                failed = ring.closed and self._source_error is not None
                ended = ring.closed and ring.written < sched.needed() and not failed
                available = ring.written
                ks = sched.take(available, ended, cut=failed)
                if len(ks) == 0:
                    if ended or failed:
                        return
                    continue
                span_start, span_len = spec.start(ks[0]), spec.end(ks[-1]) - spec.start(ks[0])
                span, lost_span = ring.read(span_start, min(span_len, available - span_start))
                if len(span) < span_len:  # zero padding after the stream's end
                    span = np.concatenate([span, np.zeros(span_len - len(span), np.float32)])
                # overwritten samples are a prefix of the span read; gaps can lie anywhere
                lost = [min(max(lost_span - j * spec.hop, 0), spec.window) + ring.gaps_in(spec.start(k), spec.window)
                        for j, k in enumerate(ks)]
                ring.release(sched.release_point())  # copied: the writer may reuse that room now
                valid = np.clip(available - np.asarray(ks) * spec.hop, 0, spec.window)
                if lost_span:  # the span's first samples were overwritten: frames shared before may differ
                    self._frame_cache.clear()
                    self._levels.clear()
                starts = np.asarray([spec.start(k) for k in ks]) - span_start
                levels = self._levels.levels(span, span_start, starts, np.maximum(valid, 1))
                pending = self.runner.prepare_span(span, len(ks), spec.hop, spec.window,
                                                   valid if ended and valid.min() < spec.window else None,
                                                   start=span_start, cache=self._frame_cache)
                self._tap_frontend(span_start, span)
                batch = PreparedBatch(self._batches, tuple(int(k) for k in ks), tuple(lost), available, pending,
                                      tuple(zip(levels[0].tolist(), levels[1].tolist())))
                self._batches += 1
                if self._network_threads:
                    self._put(self._prepared, batch)
                else:
                    self._put(self._queue, (batch.number, self._results(batch)))
        finally:  # an end marker for each network thread, or for the dispatcher
            into = self._prepared if self._network_threads else self._queue
            for _ in range(self._network_threads or 1):
                self._put(into, _END, force=True)

    def _tap_frontend(self, span_start: int, span: np.ndarray) -> None:
        """Hand the batch's audio and log-mel frames to the `FrontEndSubscriber`s (their errors counted)."""
        if not self.subscribers.wants_frontend:
            return
        mel = self._frame_cache.frames
        if mel is not None and not isinstance(mel, np.ndarray):  # a torch front-end's tensor
            mel = mel.detach().float().cpu().numpy()
        batch = FrontEndBatch(span_start, span, None if mel is None else self._frame_cache.start, mel)
        self.subscribers.frontend(batch)

    def _run_networks(self) -> None:
        """A network thread (pipelined runners): prepared batches' networks, their results to the dispatcher."""
        try:
            while True:
                try:
                    batch = self._prepared.get(timeout=POLL_S)
                except queue.Empty:
                    if self._stop.is_set():
                        return
                    continue
                if batch is _END or self._stop.is_set():
                    return
                self._put(self._queue, (batch.number, self._results(batch)))
        finally:
            self._put(self._queue, _END, force=True)

    def _results(self, batch: "PreparedBatch") -> list[WindowResult]:
        """Run a prepared batch's network and make its windows' results."""
        spec = self.spec
        out = self.runner.run_pending(batch.pending)
        scores, frames = out.scores, out.frames
        now = time.monotonic()
        results = []
        for j, k in enumerate(batch.indices):
            start_s, end_s = spec.times(k)
            arrived = self._arrival_time(min(spec.end(k), batch.available)) if self.live else None
            results.append(WindowResult(
                index=k, start_sample=spec.start(k), end_sample=spec.end(k), start_s=start_s,
                end_s=end_s, scores=None if scores is None else scores[j], embedding=out.embeddings[j],
                model=self.model_name, labels=self.labels, lost_samples=batch.lost[j],
                latency_s=None if arrived is None else now - arrived,
                frames=None if frames is None else frames[j],
                frame_times=None if frames is None else start_s + self._frame_offsets,
                stream_start_utc=self.source.start_utc,
                level_db=batch.levels[j][0] if batch.levels else None,
                level_dba=batch.levels[j][1] if batch.levels else None))
        return results

    def _put(self, into: queue.Queue, item, force: bool = False) -> None:
        """Put `item` into a queue between threads, giving up when the stream stops (the dispatcher's queue: only
        after `stop()`, as after an error it still publishes what came before; `force`: the end marker, which
        then makes room for itself so the next thread can finish)."""
        stopped = self._discarding if into is self._queue else self._stop.is_set
        while True:
            if stopped() and not force:
                raise RingClosed()
            try:
                into.put(item, timeout=POLL_S)
                return
            except queue.Full:
                if force and stopped():
                    try:
                        into.get_nowait()
                    except queue.Empty:
                        pass

    def _dispatch(self) -> None:
        """Publish results in window order (network threads finish batches out of order) until every producer
        has ended."""
        _main_thread_takes_signals()
        producers = self._network_threads or 1
        early: dict[int, list[WindowResult]] = {}  # finished before an earlier batch
        next_batch = 0
        try:
            while producers:
                try:
                    item = self._queue.get(timeout=POLL_S)
                except queue.Empty:
                    if self._stop.is_set() and not any(t.is_alive() for t in self._producers):
                        return  # stopped, and an end marker was dropped to make room for another
                    continue
                if item is _END:
                    producers -= 1
                    continue
                if self._discarding():
                    continue  # drain quietly after a stop; after an error, publish what came before it
                early[item[0]] = item[1]
                while next_batch in early:
                    for r in early.pop(next_batch):
                        if self._discarding():  # stopped mid-batch (by a subscriber, say): no more callbacks
                            break
                        self._windows += 1
                        self._lossy += r.lost_samples > 0
                        self.subscribers.publish(r, stopped=self._discarding)
                    next_batch += 1
        finally:
            self._t1 = time.monotonic()
            with self._error_lock:
                if self._error is None and self._source_error is not None:
                    self._error = self._source_error
            self._done.set()
            if self._on_finish is not None:
                self._on_finish()
