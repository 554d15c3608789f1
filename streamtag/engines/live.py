"""Live tagging of an input device or a network stream: a checked `ListenJob`, then `run_listen` until the duration,
the end, or Ctrl-C."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..audio.ffmpeg import EXTRA, ffmpeg_available, is_url
from ..audio.inputs import InputOptions, open_audio
from ..audio.microphone import MicrophoneSource
from ..errors import ConfigError, StreamtagError
from ..index.live import ExampleEvents, ExampleOptions, Examples
from ..models import Labels, load_labels
from ..models.loader import LIVE_WINDOWS, ModelChoice, RunTarget
from ..outputs import LiveView, NpzSink, TagFilter, open_text
from ..outputs.detections import write_events_csv, write_events_jsonl
from ..outputs.events import EventSettings
from ..outputs.monitor import MonitorOptions, privacy_thresholds
from ..outputs.recording import choose_formats, text_sink
from ..outputs.thresholds import given_thresholds
from ..pipeline.result import TaggerStats
from ..pipeline.tagger import Tagger
from ..server.config import NetworkOptions, default_name, require_serve
from .job import Reporter, SilentReporter, build_tagger, head_thresholds, open_monitoring
from .signals import exit_code

if TYPE_CHECKING:
    from ..server.app import Server

STDIN = "-"


@dataclass(frozen=True)
class ListenJob:
    """What `streamtag listen` does, checked: device, model, windows, how long, and one output."""

    labels: Labels = field(repr=False)
    input: int | str | None = None  # device index or name substring (None: the default input), a URL, or "-"
    model: ModelChoice = ModelChoice()
    window_s: float = LIVE_WINDOWS[0]
    hop_s: float = LIVE_WINDOWS[1]
    target: RunTarget = RunTarget()
    duration_s: float | None = None  # None: until the input ends or Ctrl-C
    tags: TagFilter = TagFilter()
    format: str = "text"
    output: str | None = None  # None or "-": stdout
    buffer_s: float = 10.0  # audio kept while inference catches up; older unread audio is lost (counted)
    reconnect: int = 5  # network streams: reconnect attempts in a row after a drop
    monitor: MonitorOptions | None = None  # detections database, clips, alerts, privacy gate (None: none)
    events: EventSettings = EventSettings()  # how the monitor finds events (the thresholds given, as `tag --events`)
    examples: ExampleOptions = ExampleOptions()  # live query-by-example
    serve: NetworkOptions | None = None  # also serve the dashboard and the network API there

    @classmethod
    def create(cls, *, input: int | str | None = None, model: ModelChoice = ModelChoice(),
               window: float | None = None, hop: float | None = None, target: RunTarget = RunTarget(),
               labels: str | os.PathLike | None = None, duration: float | None = None, top_k: int = 5,
               threshold: float | str | None = None, thresholds: str | os.PathLike | None = None,
               format: str | None = None, output: str | None = None, buffer_seconds: float = 10.0,
               reconnect: int = 5, monitor: MonitorOptions | None = None, median: int = 3,
               examples: ExampleOptions = ExampleOptions(),
               serve: NetworkOptions | None = None) -> "ListenJob":
        """A job from its parts as a user gives them; ConfigError if any is wrong. window/hop default to the
        head's (with a head), else 1 s / 0.5 s. With `monitor`, events (thresholds as for `tag --events`: the
        default score is the on-threshold, 0.3 when not given, off at half; `median`: smoothing over windows) are
        stored, clipped and alerted."""
        fmt = choose_formats((format,) if format else (), output)[0]
        if fmt not in ("text", "jsonl", "csv", "npz"):
            raise ConfigError(f"live output is text, jsonl, csv or npz, not {fmt}")
        if fmt == "npz" and (not output or output == "-"):
            raise ConfigError("npz is binary: give an output .npz file")
        if duration is not None and not duration > 0:
            raise ConfigError(f"duration must be positive, got {duration}")
        if not buffer_seconds > 0:
            raise ConfigError(f"the buffer must be positive, got {buffer_seconds} s")
        if reconnect < 0:
            raise ConfigError(f"reconnect takes 0 or more attempts, got {reconnect}")
        if serve is not None:
            require_serve()
        if input is not None and (is_url(str(input)) or input == STDIN) and not ffmpeg_available():
            raise ConfigError(f"network and piped inputs are read with FFmpeg: {EXTRA}")
        info = model.head_info()
        window, hop = model.windows(window, hop, LIVE_WINDOWS)
        label_set = load_labels(labels)
        shown = model.output_labels(label_set)
        if top_k < 1:
            raise ConfigError(f"top-k must be at least 1, got {top_k}")
        top_k = min(top_k, len(shown))
        given = head_thresholds(info, model.head_mode, len(label_set)).merged(
            given_thresholds(shown, threshold, thresholds))
        tags = TagFilter(top_k, given.default or 0.0, None, given.per_class_windows())
        on = 0.3 if given.default is None else given.default
        events = EventSettings(on=on, off=on / 2, median=median, per_class=given.per_class_events(None))
        if monitor is not None and not monitor.enabled:
            monitor = None
        if monitor is not None and monitor.privacy is not None:
            privacy_thresholds(monitor.privacy, shown)
        return cls(labels=label_set, input=input, model=model, window_s=float(window), hop_s=float(hop),
                   target=target, duration_s=duration, tags=tags, format=fmt, output=output, buffer_s=buffer_seconds,
                   reconnect=reconnect, monitor=monitor, events=events, examples=examples, serve=serve)

    def open_input(self):
        """The live source: the input device, a network stream (a URL of known length is read like a file), or
        audio piped to standard input."""
        if self.input is not None and (is_url(str(self.input)) or self.input == STDIN):
            from ..audio.ffmpeg import NetworkStream
            if self.input == STDIN:
                return NetworkStream("pipe:0", reconnect=0, buffer_s=self.buffer_s)
            return open_audio(str(self.input), InputOptions(reconnect=self.reconnect, buffer_s=self.buffer_s))
        from ..audio.microphone import MicrophoneSource
        return MicrophoneSource(self.input, buffer_s=self.buffer_s)


@dataclass(frozen=True)
class ListenSummary:
    """How a live run went: its stats, per-window latencies (s) and whether Ctrl-C ended it."""

    stats: TaggerStats
    sample_rate: int
    latencies_s: tuple[float, ...] = ()
    monitor: str | None = None  # the monitoring's summary line (events, clips, alerts), when it ran
    dropped_alerts: int = 0
    interrupted: bool = False
    exit_code: int = 0  # after an interrupt: 128 + the signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)

    def latency_ms(self) -> tuple[float, float, float] | None:
        """(p50, p95, max) latency in ms, or None without windows."""
        if not self.latencies_s:
            return None
        ms = np.asarray(self.latencies_s) * 1e3
        p50, p95 = np.percentile(ms, [50, 95])
        return float(p50), float(p95), float(ms.max())


class _ExampleFinder:
    """ExampleEvents that also announce each event and append it to the events file."""

    def __init__(self, options: ExampleOptions, tagger, reporter: Reporter) -> None:
        self.events = ExampleEvents(Examples.from_files(tagger, options.paths), options.similarity,
                                    callback=self._emit, hop_s=tagger.window.hop_s)
        self.reporter, self.model = reporter, tagger.model_name
        self.file, self.own = (None, None)
        if options.events:
            self.file, self.own = open_text(options.events)
        self.csv = (options.events or "").lower().endswith(".csv")
        self.count = 0

    def _emit(self, ev) -> None:
        self.reporter.notice(f"example {ev.label}: {ev.onset_s:.2f}-{ev.offset_s:.2f} s, similarity up to "
                             f"{ev.peak:.2f}")
        if self.file is not None:
            if self.csv:
                write_events_csv(self.file, [ev], "live", self.model, header=self.count == 0)
            else:
                write_events_jsonl(self.file, [ev], "live", self.model)
            self.file.flush()
        self.count += 1

    def __call__(self, r) -> None:
        self.events(r)

    def close(self) -> None:
        self.events.close()
        if self.own is not None:
            self.own.commit()


def example_finder(options: ExampleOptions, tagger, reporter: Reporter) -> "_ExampleFinder | None":
    """The query-by-example subscriber of a live run (None without examples)."""
    return _ExampleFinder(options, tagger, reporter) if options.active else None


def run_listen(job: ListenJob, reporter: Reporter | None = None) -> ListenSummary:
    """Tag the input device live until `duration_s`, the end of capture or Ctrl-C; outputs are flushed either way.

    A device or pipeline failure raises after the outputs are closed.
    """
    reporter = reporter or SilentReporter()
    tagger = build_tagger(job.model, job.labels, reporter, job.target, window=job.window_s, hop=job.hop_s,
                          ring_seconds=job.buffer_s)
    server = _serve(job, tagger, reporter)  # before the input opens: a piped input waits for its first bytes
    try:
        source = job.open_input()
        name = source.device["name"] if isinstance(source, MicrophoneSource) else source.path
        title = f"{name} -> {tagger.model_name}"  # the live view's heading; rows name the input alone (`file`)
        own = None
        to_file = job.output not in (None, "-")
        monitoring = monitor = None
        if job.monitor is not None:
            try:
                monitoring = open_monitoring(job.monitor, tagger)
            except BaseException:
                source.close()
                raise
            monitor = monitoring.monitor(name, job.events, tagger.window.hop_s)
        if job.format == "npz":
            sink = NpzSink(job.output, tagger.labels, source=name, hop_s=tagger.window.hop_s)
            gate = None if monitoring is None else monitoring.privacy_gate()
            if gate is not None:  # private windows' embeddings are not stored
                sink = gate.guard(sink)
        else:
            out, own = open_text(job.output or "-")
            if job.format == "text" and out is sys.stdout and sys.stdout.isatty():
                sink = LiveView(out, job.tags, title)
            else:
                sink = text_sink(job.format, out, name, job.tags, header=True, utc=True)
        if to_file and sys.stdout.isatty():  # writing a file from a terminal: show the live view there too
            tagger.subscribe(LiveView(sys.stdout, job.tags, title))
    except BaseException:
        if server is not None:
            server.stop()
        raise
    latencies: list[float] = []
    finder = example_finder(job.examples, tagger, reporter)
    if finder is not None:
        tagger.subscribe(finder)
    tagger.subscribe(sink)
    if monitor is not None:
        tagger.subscribe(monitor)
    tagger.subscribe(lambda r: latencies.append(r.latency_s) if r.latency_s is not None else None)
    interrupted, code = False, 0
    error: StreamtagError | None = None
    try:
        tagger.warm_up()
        tagger.start(source)
        reporter.notice(f"listening on {name} ({source.sample_rate} Hz) with {tagger.model_name}, "
                        f"window {job.window_s:g} s, hop {job.hop_s:g} s")
        try:
            if not tagger.join(timeout=job.duration_s):
                source.close()  # end of capture: the last windows are still published
                tagger.join()
        except KeyboardInterrupt as e:
            interrupted, code = True, exit_code(e)
            source.close()
            tagger.join(timeout=10)
    except StreamtagError as e:
        error = e
    finally:
        tagger.stop(wait=10.0)
        try:
            if server is not None:
                server.stop()
            sink.close()
            if finder is not None:
                finder.close()
            if own is not None:
                own.commit()
        finally:
            if monitoring is not None and monitor is not None:  # after the last window
                monitor.close(tagger.stats.audio_s)
                monitoring.close()
    summary = ListenSummary(tagger.stats, tagger.sample_rate, tuple(latencies),
                            None if monitoring is None else monitoring.summary(),
                            0 if monitoring is None else monitoring.dropped_alerts, interrupted, code)
    if error is not None:
        raise error
    return summary


def _serve(job: ListenJob, tagger: Tagger, reporter: Reporter) -> "Server | None":
    """The dashboard and the network API for listen's one source (`--serve`), its hub subscribed before the run."""
    if job.serve is None:
        return None
    from ..server.app import Server
    inp = "default" if job.input is None else str(job.input)
    kind = "pipe" if inp == STDIN else "network" if is_url(inp) else "device"
    name = "stdin" if inp == STDIN else default_name(inp)
    server = Server.attached(tagger, job.serve, name, kind, inp).start()
    reporter.notice(f"serving the dashboard and the network API on {server.url}/")
    return server

