"""`Tagger`: the Python entry point — tag files and arrays, or push audio and subscribe to results."""
from __future__ import annotations

import os
import queue
import threading
import warnings
import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..audio.inputs import InputOptions, open_audio
from ..audio.sources import ArraySource, AudioSource, as_float_samples
from ..errors import ConfigError
from ..models import ModelSpec, load_labels
from ..models.exported import ExportedModel
from ..models.factory import build_model, choose_weights, family_of, require_model_name
from ..models.head_info import head_windows
from ..models.labels import Labels
from ..models.runtimes import choose_runtime
from ..windows import WindowSpec
from .dispatcher import Subscriber, SubscriberList, Subscription
from .export_runner import PRECISION_NAMES, ExportRunner, default_batch_size, known_cpu
from .memory import check_run_memory
from .result import TaggerStats, WindowResult
from .stream import POLL_S, Stream

if TYPE_CHECKING:
    from ..models.head import Head
    from ..models.model import TaggingModel

_END = object()


class DefaultModelFallback(UserWarning):
    """The default model's weights are not available; the bundled model is used instead."""


class ShortWindowWarning(UserWarning):
    """The window is much shorter than the inputs the model was trained on; scores may suffer."""


SHORT_WINDOW_FRACTION = 0.5  # warn below this fraction of the training input length
# When a run imports torch (~1 s) for its front-end instead of running without it. Torch's FFT (MKL) is the
# official code's, so its rounding: scores stay within 4e-5 of the official at any window length, where numpy's
# FFT gives up to 5.5e-5 at 10 s windows and 1.2e-4 at 1-3 s (fewer frames per window average less of the
# float32 FFT's rounding). It is also 3x faster, which repays the import from 20 minutes of audio on.
TORCH_FRONTEND_FROM_S = 1200.0  # any window: the faster FFT repays importing torch
TORCH_FRONTEND_SHORT_WINDOW_S = 5.0  # windows under this take the official FFT's rounding ...
TORCH_FRONTEND_SHORT_FROM_S = 300.0  # ... from 5 minutes of audio on (shorter runs start without torch)


def prefers_torch_frontend(audio_s: float | None, window_s: float) -> bool:
    """Whether a run of `audio_s` seconds of audio (None: unknown) in `window_s` windows takes torch's front-end."""
    if audio_s is None:
        return False
    return audio_s >= TORCH_FRONTEND_FROM_S or (window_s < TORCH_FRONTEND_SHORT_WINDOW_S
                                                and audio_s >= TORCH_FRONTEND_SHORT_FROM_S)


def export_now(model: "TaggingModel", spec: ModelSpec, weights, window: int) -> ExportedModel | None:
    """Export `model`'s network for `window`-sample inputs into the cache and load it back torch-free; None when
    the cache cannot be written (a read-only home: the torch model then runs, exporting in memory)."""
    import torch
    model.eval().optimized_for(torch.zeros(1, window), "openvino")
    return ExportedModel.from_cache(spec, weights, window)


class Tagger:
    """Tags audio window by window and publishes a `WindowResult` per window, in order.

    model: a registry name, a `TaggingModel`, or None for the default (mn10_as, falling back to the
    bundled mn04_as offline with a warning). window/hop in seconds (default 10 / 2.5, or the head's).
    optimize: freeze the network for CPU inference (identical results within float rounding).
    precision: fp32, bf16 autocast, or fp16 autocast on CUDA. runtime: what runs the network on CPU,
    "auto" (OpenVINO for the EfficientAT MobileNets when installed, else torch), "torch", "openvino" or
    "onnxruntime" (the `onnxruntime` extra; torch front-end). frames: results also carry frame-level
    embeddings and their absolute times (transformer models). head: a head file (`streamtag train`) or
    `Head`, whose classes replace the model's scores ("replace") or follow them ("append"); the model
    defaults to the head's backbone.
    A registered MobileNet on CPU in fp32 (runtime auto or openvino) runs without torch: numpy front-end and
    the OpenVINO export, made and cached at the first use. audio_s: how much audio the Tagger will tag, when
    known: from 20 minutes on, or 5 minutes with windows under 5 s (`prefers_torch_frontend`), the torch model
    runs (front-end in torch, with the official code's FFT rounding, network in OpenVINO).
    """

    def __init__(self, model: "str | ModelSpec | TaggingModel | None" = None, window: float | None = None,
                 hop: float | None = None,
                 device: str = "auto", weights: str | os.PathLike | None = None, batch_size: int | None = None,
                 labels: str | os.PathLike | Labels | None = None, ring_seconds: float | None = None,
                 optimize: bool = True, precision: str = "fp32", frames: bool = False, runtime: str = "auto",
                 head: "str | os.PathLike | Head | None" = None, head_mode: str = "replace",
                 audio_s: float | None = None) -> None:
        if precision not in PRECISION_NAMES:
            raise ConfigError(f"precision must be one of {', '.join(PRECISION_NAMES)}, got {precision!r}")
        self.labels = labels if isinstance(labels, Labels) else load_labels(labels)
        if head is not None:
            from ..models.head import Head, attach_head, load_head
            head = head if isinstance(head, Head) else load_head(head)
        if head is not None and model is None:
            model = head.info.backbone  # a head's default backbone is the one it was trained on
        single = model is None or isinstance(model, ModelSpec) or (isinstance(model, str) and "," not in model)
        exported = None
        if single:  # a registered model: found without torch, and run without it when its export is cached
            require_model_name(model, weights)
            spec, resolved, notice = choose_weights(model, weights)
            window, hop = head_windows(None if head is None else head.info, window, hop, (10.0, 2.5))
            self.window = WindowSpec.from_seconds(window, hop, spec.sample_rate, spec.min_samples)
            numpy_path = (head is None and optimize and known_cpu(device)
                          and not prefers_torch_frontend(audio_s, self.window.window_s)
                          and choose_runtime(runtime, family_of(spec).exportable, "cpu", precision) == "openvino")
            if numpy_path:
                exported = ExportedModel.from_cache(spec, resolved, self.window.window)
            self.model = exported if exported is not None else build_model(spec, resolved, self.labels)
            if numpy_path and exported is None:  # export now, so every run of this model has the same front-end
                exported = export_now(self.model, spec, resolved, self.window.window)
                self.model = exported or self.model
        else:
            from ..models.factory import resolve_model
            self.model, notice = resolve_model(model, weights, self.labels)
            window, hop = head_windows(None if head is None else head.info, window, hop, (10.0, 2.5))
            self.window = WindowSpec.from_seconds(window, hop, self.model.sample_rate, self.model.min_samples)
        if notice:
            warnings.warn(notice, DefaultModelFallback, stacklevel=2)
        self.spec = self.model.spec
        self.model_name = self.spec.name
        if head is not None:
            self.model = attach_head(self.model, head, head_mode, self.window.window_s)
            self.labels = head.info.labels(self.labels, head_mode)
            self.spec = self.model.spec
            self.model_name = self.spec.name
        trained = self.spec.trained_window_s
        if trained and self.window.window_s < SHORT_WINDOW_FRACTION * trained:
            warnings.warn(f"{self.model_name} was trained on {trained:g} s inputs; {self.window.window_s:g} s "
                          "windows are much shorter and its outputs may be less reliable", ShortWindowWarning,
                          stacklevel=2)
        if frames and not self.model.has_frames:
            raise ConfigError(f"{self.model_name} has no frame-level embeddings (frames=True / --frames)")
        if exported is not None:
            self.runner = ExportRunner(exported)
        else:
            from .runner import ModelRunner
            self.runner = ModelRunner(self.model, device, optimize=optimize, precision=precision, frames=frames,
                                      runtime=runtime)
        self.device = self.runner.device
        if batch_size is None:
            batch_size = default_batch_size(self.device, self.window.window_s)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        # what any run needs (a file's run is checked again with its length: hop > window gaps
        # make a batch's span long, but a short file has few windows)
        check_run_memory(self.window, batch_size if self.window.hop <= self.window.window else 1, ring_seconds)
        if self.spec.num_classes not in (0, len(self.labels)):
            raise ConfigError(f"{self.model_name} has {self.spec.num_classes} outputs but the label file "
                              f"has {len(self.labels)} classes")
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
