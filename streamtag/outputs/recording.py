"""Every output file of one recording: window sinks, events, a plot and the sidecar, committed together."""
from __future__ import annotations

import dataclasses
import json
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from typing import IO, Callable, Protocol, Sequence

import numpy as np

from .._version import __version__
from ..errors import ConfigError, OutputError
from ..models.labels import Labels
from ..pipeline.result import WindowResult
from ..windows import WindowSpec
from .detections import write_audacity, write_events_csv, write_events_jsonl, write_raven
from .events import EventDetector, EventSettings, EventSubscriber
from .sinks import AtomicFile, CsvSink, JsonlSink, NpzSink, TagFilter, TextSink, open_text, utc_text
from .thresholds import Thresholds, given_thresholds

FORMATS = ("text", "jsonl", "csv", "npz")
EVENT_FORMATS = ("audacity", "raven")
EXTENSIONS = {"jsonl": ".jsonl", "csv": ".csv", "npz": ".npz", "text": ".txt", "audacity": ".labels.txt",
              "raven": ".selection.table.txt"}
SIDECAR = ".streamtag.json"


class RunInfo(Protocol):
    """What the outputs need to know about a run (a `Tagger` has all of it)."""

    labels: Labels
    window: WindowSpec
    model_name: str
    sample_rate: int


SCORE_FORMATS = ("csv",) + EVENT_FORMATS  # formats made of tags: they need a model that gives scores


def choose_formats(requested: Sequence[str] = (), output: str | None = None, output_dir: str | None = None) -> list[str]:
    """The formats to write: those requested (each may be comma-separated), else from the output's
    extension, else jsonl into a folder or text on stdout."""
    fmts = [f.strip().lower() for v in requested for f in v.split(",") if f.strip()]
    for f in fmts:
        if f not in FORMATS + EVENT_FORMATS:
            raise ConfigError(f"unknown format {f!r} (use {', '.join(FORMATS + EVENT_FORMATS)})")
    if fmts:
        return list(dict.fromkeys(fmts))
    if output and output != "-":
        for name, ext in sorted(EXTENSIONS.items(), key=lambda kv: -len(kv[1])):
            if output.endswith(ext):
                return [name]
        return ["jsonl"]
    return ["jsonl"] if output_dir else ["text"]


def label_indices(labels: Labels, names: str | Sequence[str] | None) -> list[int]:
    """Indices of display names or mids (a comma-separated string or a sequence); unknown ones raise."""
    items = names.split(",") if isinstance(names, str) else list(names or ())
    return [labels.index(n) for n in items if n.strip()]


PLOT_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg", "webp", "tif", "tiff")  # image files matplotlib writes


@dataclasses.dataclass(frozen=True)
class OutputOptions:
    """What a user asks of the outputs, as given (`OutputPlan.from_options` checks it against the labels and inputs).

    threshold hides window tags below it and is the events' on-threshold (default 0.3; the off-threshold
    defaults to half of it). It may name classes with their own (`0.2,Dog=0.5`); `thresholds` is a CSV of
    label,threshold[,off_threshold] rows, which `threshold` overrides. include/exclude are label names or mids.
    """

    formats: tuple[str, ...] = ()
    output: str | None = None
    output_dir: str | None = None
    top_k: int = 5
    events: bool = False
    include: str | tuple[str, ...] | None = None
    exclude: str | tuple[str, ...] | None = None
    threshold: float | str | None = None
    thresholds: str | None = None
    off_threshold: float | None = None
    min_duration_s: float = 0.5
    max_gap_s: float = 1.0
    median: int = 3
    plot: str | None = None
    frames: bool = False


@dataclasses.dataclass(frozen=True)
class OutputPlan:
    """Which files to write for each recording, and how (`from_options` checks every rule once)."""

    formats: tuple[str, ...]
    tags: TagFilter = TagFilter()
    settings: EventSettings = EventSettings()
    as_events: bool = False
    output: str | None = None  # one file (or "-") for a single recording
    output_dir: str | None = None  # one file per recording and format, plus a sidecar
    plot_path: str | None = None
    weights: str | None = None  # the checkpoint given instead of the official one (recorded; part of resume)
    head: dict | None = None  # the head file used (path, sha256, classes, mode): recorded; part of resume
    utc: bool = False  # tables get wall-clock (UTC) columns: the recordings have a start time, or are live
    clock: dict | None = None  # where the start times come from (recorded; part of resume)

    @classmethod
    def from_options(cls, labels: Labels, options: OutputOptions = OutputOptions(), recordings: int = 1,
                     base_thresholds: Thresholds | None = None) -> "OutputPlan":
        """The plan for `recordings` inputs, or ConfigError naming the first rule the options break; the given
        thresholds override `base_thresholds` (a head's)."""
        o = options
        chosen = choose_formats(o.formats, o.output, o.output_dir)
        if o.output and o.output_dir:
            raise ConfigError("give an output file or an output folder, not both")
        if len(chosen) > 1 and not o.output_dir:
            raise ConfigError("several formats need an output folder")
        if "npz" in chosen and not o.output_dir and (not o.output or o.output == "-"):
            raise ConfigError("npz is binary: give an output .npz file or an output folder")
        if not o.output_dir and recordings > 1 and set(chosen) & {"npz", "audacity", "raven"}:
            raise ConfigError(f"{chosen[0]} holds one recording: use an output folder for several files")
        if o.plot and Path(o.plot).suffix.lower().lstrip(".") not in PLOT_FORMATS:
            raise ConfigError(f"--plot {o.plot}: a plot is written as {', '.join(PLOT_FORMATS)} (by its extension)")
        if o.plot and recordings > 1 and not o.output_dir:
            raise ConfigError("a plot draws one recording: use an output folder for several files")
        if o.frames and "npz" not in chosen:
            raise ConfigError("frame embeddings are written to NPZ output only: choose the npz format")
        if o.top_k < 1:
            raise ConfigError(f"top-k must be at least 1, got {o.top_k}")
        top_k = min(o.top_k, len(labels))  # a 3-class head shows at most 3
        included, excluded = label_indices(labels, o.include), set(label_indices(labels, o.exclude))
        allowed = [i for i in (included or range(len(labels))) if i not in excluded]
        given = (base_thresholds or Thresholds()).merged(given_thresholds(labels, o.threshold, o.thresholds))
        on = 0.3 if given.default is None else given.default
        settings = EventSettings(on=on, off=on / 2 if o.off_threshold is None else o.off_threshold,
                                 min_duration_s=o.min_duration_s, max_gap_s=o.max_gap_s, median=o.median,
                                 labels=tuple(allowed), per_class=given.per_class_events(o.off_threshold))
        tags = TagFilter(top_k, given.default or 0.0, None if len(allowed) == len(labels) else tuple(allowed),
                         given.per_class_windows())
        return cls(tuple(chosen), tags, settings, o.events, o.output, o.output_dir, o.plot)

    def needs_scores(self) -> list[str]:
        """The parts of this plan made of tags (empty when embeddings alone can be written)."""
        return ([f for f in self.formats if f in SCORE_FORMATS] + (["events"] if self.as_events else [])
                + (["a plot"] if self.plot_path else [])
                + (["a label filter"] if self.tags.allowed is not None else []))

    def check_model(self, model_name: str, has_scores: bool) -> None:
        """Refuse, before any work, outputs that an embedding-only model cannot feed."""
        wanted = [] if has_scores else self.needs_scores()
        if wanted:
            raise ConfigError(f"{model_name} gives embeddings only (no scores), so {', '.join(wanted)} "
                              f"cannot be written: choose npz (text and jsonl list the windows)")

    def dest(self, stem: str, fmt: str) -> Path:
        """Where format `fmt` of recording `stem` goes in `output_dir`."""
        ext = EXTENSIONS[fmt]
        if self.as_events and fmt in ("jsonl", "csv", "text"):
            ext = ".events" + ext
        return Path(self.output_dir) / (stem + ext)

    def sidecar(self, stem: str) -> Path:
        return Path(self.output_dir) / (stem + SIDECAR)

    def is_complete(self, stem: str, info: RunInfo) -> bool:
        """Whether `output_dir` already holds every output of `stem` from a run with the same settings."""
        try:
            meta = json.loads(self.sidecar(stem).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        same = (meta.get("model") == info.model_name and meta.get("window_s") == info.window.window_s
                and meta.get("hop_s") == info.window.hop_s and meta.get("formats") == list(self.formats)
                and meta.get("thresholds") == self.thresholds_record(info.labels)
                and meta.get("weights") == self.weights and meta.get("head") == self.head
                and meta.get("clock") == self.clock)
        return same and all(self.dest(stem, f).is_file() for f in self.formats)

    def thresholds_record(self, labels: Labels) -> dict:
        """The thresholds in use, classes by name, as the sidecar records them (a class's `on` is also its
        window filter)."""
        events = self.settings
        return {"windows": self.tags.threshold, "events_on": events.on, "events_off": events.off,
                "classes": {labels.names[i]: {"on": on, "off": off} for i, on, off in events.per_class}}


class RecordingOutputs:
    """A subscriber writing every planned output of one recording; `finish()` commits them, `discard()` drops them."""

    def __init__(self, plan: OutputPlan, info: RunInfo, path: str, stem: str, shared_out: IO[str] | None,
                 first: bool) -> None:
        self.plan, self.info, self.path, self.stem, self.first = plan, info, path, stem, first
        self.sinks: list = []
        self.files: list[AtomicFile] = []
        self.event_writers: list[tuple[str, IO[str]]] = []
        self._dest: dict[int, str] = {}  # id(sink or stream) -> where it writes
        self.error: tuple[str, BaseException] | None = None  # the first write that failed, raised by finish()
        self.on_error: Callable[[], None] | None = None  # called once, on that failure (e.g. tagger.stop)
        try:
            for fmt in plan.formats:
                self._open(fmt, shared_out)
        except OSError as e:
            self.discard()
            raise OutputError.writing(self._failed_dest(fmt), e) from None
        except BaseException:
            self.discard()
            raise
        self.detector = None
        if plan.as_events or plan.plot_path or any(f in EVENT_FORMATS for f in plan.formats):
            self.detector = EventSubscriber(EventDetector(info.labels, plan.settings, hop_s=info.window.hop_s),
                                            lambda e: None)
            self.sinks.append(self.detector)
        self.plot_rows: list[tuple[float, float, np.ndarray]] = []
        self.audio_s: float | None = None  # the recording's length, given to finish()
        self.start_utc = None  # the recording's wall-clock start, from its first window

    def _open(self, fmt: str, shared_out: IO[str] | None) -> None:
        plan, info = self.plan, self.info
        if fmt == "npz":
            dest = plan.dest(self.stem, fmt) if plan.output_dir else plan.output
            head = {} if plan.head is None else {"head_sha256": plan.head["sha256"], "head_path": plan.head["path"]}
            sink = NpzSink(dest, info.labels, source=self.path, hop_s=info.window.hop_s, extra=head)
            self.sinks.append(sink)
            self._dest[id(sink)] = str(dest)
            return
        if plan.output_dir:
            out, own = open_text(plan.dest(self.stem, fmt))
            self.files.append(own)
            where = str(own.path)
        else:
            out, where = shared_out, plan.output if plan.output not in (None, "-") else "standard output"
        self._dest[id(out)] = where
        if fmt in EVENT_FORMATS or plan.as_events:
            self.event_writers.append((fmt, out))
        else:
            sink = text_sink(fmt, out, self.path, plan.tags, header=self.first or bool(plan.output_dir), utc=plan.utc)
            self.sinks.append(sink)
            self._dest[id(sink)] = where

    def _failed_dest(self, fmt: str) -> str:
        return str(self.plan.dest(self.stem, fmt)) if self.plan.output_dir else str(self.plan.output or "standard output")

    def __call__(self, r: WindowResult) -> None:
        if self.error is not None:
            return  # this recording's outputs are lost already; finish() says why
        if self.start_utc is None:
            self.start_utc = r.stream_start_utc
        for sink in self.sinks:
            try:
                sink(r)
            except Exception as e:  # a full disk, a closed pipe: the whole recording fails, loudly
                self.error = (self._dest.get(id(sink), self.path), e)
                if self.on_error is not None:
                    self.on_error()
                return
        if self.plan.plot_path:
            self.plot_rows.append((r.start_s, r.end_s, r.scores))

    def finish(self, audio_s: float | None = None) -> None:
        """Close the sinks, write events, plot and sidecar, then commit every file (discarding all on error).

        `audio_s`: the recording's length, where events and the plot end (else the last window's end).
        """
        self.audio_s = audio_s
        where = self.path
        try:
            if self.error is not None:
                where, error = self.error
                raise error
            for sink in self.sinks:
                where = self._dest.get(id(sink), self.path)
                sink.close(audio_s) if sink is self.detector else sink.close()
            events = self.detector.events if self.detector is not None else []
            for fmt, out in self.event_writers:
                where = self._dest.get(id(out), self.path)
                self._write_events(fmt, out, events)
            if self.plan.plot_path:
                where = self.plan.plot_path
                self._plot(events)
            for own in self.files:
                where = str(own.path)
                own.commit()
            if self.plan.output_dir:
                where = str(self.plan.sidecar(self.stem))
                self._sidecar()  # last: its presence marks the recording complete (resume)
        except OSError as e:
            self.discard()
            raise OutputError.writing(where, e) from None
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        for own in self.files:
            own.discard()

    def _write_events(self, fmt: str, out: IO[str], events) -> None:
        model, path, first = self.info.model_name, self.path, self.first or bool(self.plan.output_dir)
        start = self.start_utc
        if fmt == "audacity":
            write_audacity(out, events)
        elif fmt == "raven":
            write_raven(out, events, path, self.info.sample_rate / 2, start)
        elif fmt == "jsonl":
            write_events_jsonl(out, events, path, model, start)
        elif fmt == "csv":
            write_events_csv(out, events, path, model, header=first, utc=self.plan.utc, start_utc=start)
        else:
            out.write(f"# {path}  (model {model}, {len(events)} events)\n")
            for e in events:
                when = "" if start is None else f"  {utc_text(start + timedelta(seconds=e.onset_s))}"
                out.write(f"{e.onset_s:8.2f}-{e.offset_s:8.2f} s{when}  {e.label}  peak {e.peak:.2f}\n")

    def _plot(self, events) -> None:
        from .plot import plot_scores  # matplotlib only when a plot is asked for
        plan, rows = self.plan, self.plot_rows
        dest = Path(plan.output_dir) / f"{self.stem}{Path(plan.plot_path).suffix or '.png'}" if plan.output_dir \
            else plan.plot_path
        start = np.array([r[0] for r in rows])
        end = np.array([r[1] for r in rows])
        scores = np.stack([r[2] for r in rows]) if rows else np.zeros((0, len(self.info.labels)))
        plot_scores(dest, start, end, scores, self.info.labels.names, events, audio_s=self.audio_s,
                    title=f"{os.path.basename(self.path)} ({self.info.model_name})")

    def _sidecar(self) -> None:
        w = self.info.window
        meta = {"source": self.path, "model": self.info.model_name, "weights": self.plan.weights, "head": self.plan.head,
                "window_s": w.window_s, "hop_s": w.hop_s,
                "streamtag_version": __version__, "formats": list(self.plan.formats),
                "events": dataclasses.asdict(self.plan.settings) | {"labels": None, "per_class": None},
                "thresholds": self.plan.thresholds_record(self.info.labels), "clock": self.plan.clock,
                "start_utc": None if self.start_utc is None else utc_text(self.start_utc)}
        out, own = open_text(self.plan.sidecar(self.stem))
        out.write(json.dumps(meta, indent=2) + "\n")
        own.commit()


def text_sink(fmt: str, out: IO[str], path: str, tags: TagFilter, header: bool, utc: bool = False):
    """The JSONL, CSV or text sink writing windows to `out` (`utc`: CSV has the wall-clock columns)."""
    if fmt == "jsonl":
        return JsonlSink(out, path, tags)
    if fmt == "csv":
        return CsvSink(out, path, tags, header=header, utc=utc)
    return TextSink(out, path, tags)


def recording_stems(paths: list[str]) -> list[str]:
    """Output name stems, one per input path or URL (its last path part, else its host), made unique in order
    (x, x-1, x-2 ...)."""
    seen: dict[str, int] = {}
    out = []
    for f in paths:
        url = urlsplit(f) if "://" in f else None
        stem = Path(f).stem if url is None else (Path(url.path).stem or url.hostname or "stream").replace(":", "_")
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        out.append(stem if n == 0 else f"{stem}-{n}")
    return out
