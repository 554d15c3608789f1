"""Detections that act: a subscriber that turns windows into events with levels, then stores them, writes
their clips, sends alerts and keeps private audio out, each part optional."""
from __future__ import annotations

import dataclasses
import math
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit
from datetime import datetime, timedelta
from typing import Any, Callable, Protocol

import numpy as np

from ..audio.levels import mean_level
from ..errors import ConfigError, LabelsError
from ..models.labels import Labels
from ..pipeline.dispatcher import AudioTap
from ..pipeline.result import WindowResult
from .alerts import AlertHub, destination
from .clips import ClipWriter
from .detection import Detection, EventStart
from .events import Event, EventDetector, EventSettings, window_slice
from .privacy import DEFAULT_PRIVACY_THRESHOLD, PrivacyGate
from .store import DetectionStore


class NoiseFloor:
    """A running noise floor: the `percentile`-th percentile of the last `seconds` of window levels (dB)."""

    def __init__(self, seconds: float = 60.0, percentile: float = 10.0) -> None:
        if not (0 < seconds <= 24 * 3600 and 0 <= percentile <= 100):
            raise ConfigError(f"noise floor: need 0 < seconds <= 1 day and a percentile within 0..100, got "
                              f"{seconds} s and {percentile}")
        self.seconds, self.percentile = seconds, percentile
        self._levels: deque[tuple[float, float]] = deque()  # (window start s, level dB)

    def update(self, start_s: float, level_db: float) -> float:
        """Add a window's level; returns the floor now."""
        self._levels.append((start_s, level_db))
        while self._levels and self._levels[0][0] < start_s - self.seconds:
            self._levels.popleft()
        return self.value

    @property
    def value(self) -> float:
        if not self._levels:
            return math.nan
        return float(np.percentile([v for _, v in self._levels], self.percentile))


class Store(Protocol):
    def begin_run(self, settings: dict, source: str, model: str, weights_sha256: str | None = None) -> int: ...
    def add(self, d: Detection) -> int: ...
    def set_clip(self, event_id: int, clip_path: str) -> None: ...
    def clip_deleted(self, clip_path: str) -> None: ...
    def end_run(self, windows: int = 0, lost_samples: int = 0, dropped_alerts: int = 0) -> None: ...
    def close(self) -> None: ...


class Alerts(Protocol):
    def start(self, e: EventStart) -> None: ...
    def end(self, d: Detection) -> None: ...
    @property
    def dropped(self) -> int: ...
    def close(self) -> None: ...


@dataclass
class MonitorStats:
    """What a Monitor did: windows seen, events kept, dropped by --min-snr, clips, private windows."""

    windows: int = 0
    lost_samples: int = 0
    events: int = 0
    below_snr: int = 0
    redacted: int = 0
    private_windows: int = 0
    clips: int = 0
    clips_deleted: int = 0
    clips_truncated: int = 0
    dropped_alerts: int = 0
    detections: list[Detection] = field(default_factory=list)


class Monitor(AudioTap):
    """A subscriber: events from the windows (`EventDetector`), with levels, noise floor and SNR; then the
    parts given: a store (`DetectionStore`), clips (`ClipWriter`, fed by the pipeline's audio tap), alerts
    (`AlertHub`), a privacy gate (`PrivacyGate`) and `on_detection(d)` for your own code.

    min_snr_db: events (and their start alerts) whose SNR is below it are dropped. owns_parts: close() also closes
    the store and the alerts (False when they are shared by several streams' monitors, see `Monitoring`).
    """

    def __init__(self, labels: Labels, events: EventSettings | None = None, source: str = "",
                 store: Store | None = None, clips: Any = None, alerts: Alerts | None = None,
                 privacy: Any = None, min_snr_db: float | None = None, noise_floor: NoiseFloor | None = None,
                 weights_sha256: str | None = None, settings: dict | None = None,
                 on_detection: Callable[[Detection], object] | None = None, hop_s: float | None = None,
                 owns_parts: bool = True) -> None:
        if min_snr_db is not None and not -200 <= min_snr_db <= 200:
            raise ConfigError(f"--min-snr must be a level difference in dB, got {min_snr_db}")
        self.labels, self.source = labels, source
        self.store, self.clips, self.alerts, self.privacy = store, clips, alerts, privacy
        self.min_snr_db, self.weights_sha256 = min_snr_db, weights_sha256
        self.settings = dict(settings or {})
        self.on_detection = on_detection
        self.owns_parts = owns_parts
        self._dropped_before = 0  # alerts dropped (shared destinations) before this stream began
        self.floor = noise_floor or NoiseFloor()
        self.detector = EventDetector(labels, events, on_open=self._opened, hop_s=hop_s)
        self.stats = MonitorStats()
        self._recent: deque[tuple[WindowResult, float]] = deque(maxlen=4096)  # (window, floor then)
        self._started: set[str] = set()  # labels whose start alert went out
        self._model = ""
        self._utc0: datetime | None = None
        self._lock = threading.Lock()
        self._closed = False
        if clips is not None:
            clips.privacy = privacy
            if store is not None:
                clips.on_delete = store.clip_deleted

    # -- the pipeline's side ----------------------------------------------------------
    def on_audio(self, start: int, samples: np.ndarray, rate: int) -> None:
        """The pipeline's audio tap (for clips)."""
        if self.clips is not None:
            self.clips.on_audio(start, samples, rate)

    def __call__(self, r: WindowResult) -> None:
        with self._lock:
            if self.stats.windows == 0:
                self._begin(r)
            self.stats.windows += 1
            self.stats.lost_samples += r.lost_samples
            self._utc0 = r.stream_start_utc
            floor = self.floor.update(r.start_s, r.level_db) if r.level_db is not None else math.nan
            self._recent.append((r, floor))
            if self.privacy is not None and self.privacy.update(r):
                self.stats.private_windows += 1
            for ev in self.detector.update(r):
                self._closed_event(ev)
            if self.clips is not None:  # windows up to the median's lag are decided
                decided = self._recent[max(0, len(self._recent) - 1 - self.detector.settings.median // 2)][0]
                self.clips.advance(decided.start_s)

    def close(self, end_s: float | None = None) -> None:
        """End of stream: close open events, write the last clips, record the run's end, close the parts."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for ev in self.detector.flush(end_s):
                self._closed_event(ev)
            if self.clips is not None:
                self.clips.finish()
                self.stats.clips = self.clips.written
                self.stats.clips_deleted = self.clips.deleted
                self.stats.clips_truncated = self.clips.truncated
            if self.alerts is not None:
                if self.owns_parts:
                    self.alerts.close()
                self.stats.dropped_alerts = self.alerts.dropped - self._dropped_before
            if self.store is not None:
                if self.stats.windows:
                    self.store.end_run(self.stats.windows, self.stats.lost_samples, self.stats.dropped_alerts)
                if self.owns_parts:
                    self.store.close()

    # -- events -------------------------------------------------------------------------
    def _begin(self, r: WindowResult) -> None:
        self._model = r.model
        if self.alerts is not None:
            self._dropped_before = self.alerts.dropped
        if self.store is not None:
            self.store.begin_run(self.settings, self.source, r.model, self.weights_sha256)

    def _at(self, seconds: float) -> datetime | None:
        return None if self._utc0 is None else self._utc0 + timedelta(seconds=seconds)

    def _windows_between(self, first: int, last: int) -> list[tuple[WindowResult, float]]:
        return [(r, f) for r, f in self._recent if first <= r.index <= last]

    def _opened(self, label: str, onset_s: float) -> None:
        """EventDetector's on_open: a start alert (unless its window's SNR is below --min-snr)."""
        if self.alerts is None:
            return
        hop = self.detector.hop_s
        best = min(self._recent, key=lambda rf: abs(window_slice(rf[0].start_s, rf[0].end_s, hop or 0.0,
                                                                 rf[0].index == 0)[0] - onset_s), default=None)
        if best is None:
            return
        r, floor = best
        i = self.labels.names.index(label)
        snr = None if r.level_db is None or math.isnan(floor) else r.level_db - floor
        if self.min_snr_db is not None and snr is not None and snr < self.min_snr_db:
            return
        self._started.add(label)
        self.alerts.start(EventStart(label, self.labels.mids[i], onset_s,
                                     float(r.scores[i]) if r.scores is not None else 0.0, self.source, self._model,
                                     self._at(onset_s), r.level_db, snr))

    def _closed_event(self, ev: Event) -> None:
        windows = self._windows_between(ev.first_window, ev.last_window)
        levels = [r.level_db for r, _ in windows if r.level_db is not None]
        levels_a = [r.level_dba for r, _ in windows if r.level_dba is not None]
        level = mean_level(levels) if levels else None
        level_a = mean_level(levels_a) if levels_a else None
        floor = windows[0][1] if windows and not math.isnan(windows[0][1]) else None
        snr = None if level is None or floor is None else level - floor
        started = ev.label in self._started
        self._started.discard(ev.label)
        if self.min_snr_db is not None and snr is not None and snr < self.min_snr_db:
            self.stats.below_snr += 1
            if started and self.alerts is not None:  # close what was announced
                self.alerts.end(self._detection(ev, level, level_a, floor, snr))
            return
        d = self._detection(ev, level, level_a, floor, snr)
        if self.store is not None:
            d = replace(d, id=self.store.add(d))
        self.stats.events += 1
        self.stats.redacted += d.redacted
        self.stats.detections.append(d)
        if self.clips is not None:
            self.clips.request(d, self._clip_written)
        if self.alerts is not None:
            self.alerts.end(d)
        if self.on_detection is not None:
            self.on_detection(d)

    def _detection(self, ev: Event, level: float | None, level_a: float | None, floor: float | None,
                   snr: float | None) -> Detection:
        redacted = False
        if self.privacy is not None:
            pad = self.clips.padding_s if self.clips is not None else 0.0
            redacted = self.privacy.overlaps(ev.onset_s - pad, ev.offset_s + pad)
        return Detection(ev.label, ev.mid, ev.onset_s, ev.offset_s, ev.peak, ev.mean, self.source, self._model,
                         self.weights_sha256, self._at(ev.onset_s), self._at(ev.offset_s), level, level_a, floor,
                         snr, redacted)

    def _clip_written(self, d: Detection, path: str) -> None:
        if self.store is not None and d.id is not None:
            self.store.set_clip(d.id, path)
        for k, old in enumerate(self.stats.detections):
            if old is d:
                self.stats.detections[k] = replace(d, clip_path=path)
                break


ALERT_SCHEMES = ("mqtt", "mqtts", "http", "https", "exec")


def _names(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...] | None:
    """Label names given as `a,b` text or a sequence (None stays None)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(n.strip() for n in items if str(n).strip())
    return names or None


def privacy_items(spec: str) -> list[tuple[str, float | None]]:
    """`Speech,Laughter=0.2` as [(text, threshold or None)]: the comma-separated parts, each checked for a
    threshold within 0..1 (names are matched to labels later, where a name may span commas)."""
    out: list[tuple[str, float | None]] = []
    for part in spec.split(","):
        if not part.strip():
            continue
        name, eq, value = part.rpartition("=")
        if not eq:
            out.append((part.strip(), None))
            continue
        try:
            t = float(value)
        except ValueError:
            raise ConfigError(f"--privacy {spec!r}: {value.strip()!r} is not a threshold") from None
        if not (math.isfinite(t) and 0.0 <= t <= 1.0):
            raise ConfigError(f"--privacy {spec!r}: a threshold must be within 0..1, got {value.strip()}")
        if not name.strip():
            raise ConfigError(f"--privacy {spec!r}: a label is missing before '='")
        out.append((name.strip(), t))
    if not out:
        raise ConfigError(f"--privacy {spec!r}: name at least one label (e.g. Speech or Speech=0.1)")
    return out


def privacy_thresholds(spec: str, labels: Labels) -> dict[str, float]:
    """The privacy labels of a `--privacy` spec and their thresholds; names may hold commas ("Male speech, man
    speaking"): the longest run of parts that names a label wins."""
    items = privacy_items(spec)
    out: dict[str, float] = {}
    i = 0
    while i < len(items):
        for j in range(len(items), i, -1):
            if any(t is not None for _, t in items[i:j - 1]):
                continue  # a threshold ends a name
            name = ", ".join(n for n, _ in items[i:j])
            try:
                index = labels.index(name)
            except LabelsError:
                continue
            t = items[j - 1][1]
            out[labels.names[index]] = DEFAULT_PRIVACY_THRESHOLD if t is None else t
            i = j
            break
        else:
            try:
                labels.index(items[i][0])
            except LabelsError as e:
                raise ConfigError(f"--privacy: {e} (a custom head in 'replace' mode has no AudioSet labels; use "
                                  "head mode 'append')") from None
    return out


@dataclass(frozen=True)
class MonitorOptions:
    """What a run does with its events besides listing them: a detections database, clips, alerts, a privacy
    gate, an SNR floor. Each part is off unless given (`enabled` says whether any is); validated here.

    store: SQLite file; clips: folder of FLAC clips (`clip_padding_s` around each event, at most `clips_max_gb`
    on disk, oldest deleted first); alerts: destination URLs (mqtt://, http(s)://, exec:COMMAND), for
    `alert_labels` only (None: all) and at most one per label per `alert_cooldown_s`; privacy: `Speech` or
    `Speech=0.1,Laughter` (labels whose windows are never written as audio or embeddings); min_snr_db: events
    with a lower SNR are dropped.
    """

    store: str | None = None
    clips: str | None = None
    clip_padding_s: float = 1.0
    clips_max_gb: float | None = None
    alerts: tuple[str, ...] = ()
    alert_labels: tuple[str, ...] | None = None
    alert_cooldown_s: float = 0.0
    privacy: str | None = None
    min_snr_db: float | None = None

    def __post_init__(self) -> None:
        alerts = (self.alerts,) if isinstance(self.alerts, str) else tuple(self.alerts or ())
        object.__setattr__(self, "alerts", tuple(str(a) for a in alerts))
        object.__setattr__(self, "alert_labels", _names(self.alert_labels))
        for name in ("store", "clips", "privacy"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, str(value))
        if self.store is not None and not self.store.strip():
            raise ConfigError("--store needs a database file name")
        if self.clips is not None and not self.clips.strip():
            raise ConfigError("--clips needs a folder")
        if not (math.isfinite(self.clip_padding_s) and 0.0 <= self.clip_padding_s <= 60.0):
            raise ConfigError(f"--clip-padding must be within 0..60 s, got {self.clip_padding_s}")
        if self.clips_max_gb is not None and not (math.isfinite(self.clips_max_gb) and self.clips_max_gb > 0):
            raise ConfigError(f"--clips-max-gb must be a positive size in GB, got {self.clips_max_gb}")
        if self.clips_max_gb is not None and self.clips is None:
            raise ConfigError("--clips-max-gb bounds the clips folder: give --clips DIR too")
        for url in self.alerts:
            scheme = url.split(":", 1)[0].lower() if ":" in url else ""
            if scheme not in ALERT_SCHEMES:
                raise ConfigError(f"--alert {url!r}: use mqtt://host:port/topic, http(s)://..., or exec:COMMAND")
            if scheme == "exec" and not url.split(":", 1)[1].strip():
                raise ConfigError(f"--alert {url!r}: exec: needs a command")
            if scheme != "exec" and not urlsplit(url).hostname:
                raise ConfigError(f"--alert {url!r}: the URL names no host")
        if not (math.isfinite(self.alert_cooldown_s) and self.alert_cooldown_s >= 0):
            raise ConfigError(f"--alert-cooldown must be >= 0 s, got {self.alert_cooldown_s}")
        if (self.alert_labels is not None or self.alert_cooldown_s) and not self.alerts:
            raise ConfigError("--alert-labels and --alert-cooldown shape alerts: give --alert URL too")
        if self.privacy is not None:
            privacy_items(self.privacy)
        if self.min_snr_db is not None and not (math.isfinite(self.min_snr_db) and -200 <= self.min_snr_db <= 200):
            raise ConfigError(f"--min-snr must be a level difference in dB, got {self.min_snr_db}")

    @property
    def enabled(self) -> bool:
        """Whether any part is asked for (else no Monitor is needed)."""
        return bool(self.store or self.clips or self.alerts or self.privacy or self.min_snr_db is not None)

    @property
    def max_bytes(self) -> int | None:
        return None if self.clips_max_gb is None else max(1, int(self.clips_max_gb * 1e9))

    def record(self) -> dict[str, Any]:
        """The options as plain data (part of a run's settings); alert URLs without their passwords."""
        out = dataclasses.asdict(self)
        out["alerts"] = [_without_password(u) for u in self.alerts]
        out["alert_labels"] = None if self.alert_labels is None else list(self.alert_labels)
        return out

    def open(self, labels: Labels, *, model: str = "", weights_sha256: str | None = None,
             settings: dict | None = None) -> "Monitoring":
        """The run's shared parts (database, alert destinations; checked now: a bad privacy label, an unreadable
        database or a missing MQTT client raise here); `Monitoring.monitor(...)` gives each stream its Monitor."""
        return Monitoring(self, labels, model=model, weights_sha256=weights_sha256, settings=settings)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def model_weights_sha256(model: Any) -> str | None:
    """The sha256 of a loaded model's weights file (an ensemble's members', comma-separated; a head's backbone's);
    None for a network without a weights file."""
    from ..models.weights import weights_sha256
    members = getattr(model, "members", None)
    if members is not None:
        shas = [model_weights_sha256(m) or "" for m in members]
        return ",".join(shas) if any(shas) else None
    base = getattr(model, "base", None)
    if base is not None:
        return model_weights_sha256(base)
    weights, spec = getattr(model, "weights", None), getattr(model, "spec", None)
    if weights is None or spec is None:
        return None
    return weights_sha256(spec, weights)


class Monitoring:
    """The monitoring of one run: its database and alert destinations, shared by every stream's `Monitor`
    (one per input: a row in the runs table each). `close()` ends it (alerts flushed, database closed)."""

    def __init__(self, options: MonitorOptions, labels: Labels, *, model: str = "", weights_sha256: str | None = None,
                 settings: dict | None = None) -> None:
        self.options, self.labels, self.model, self.weights_sha256 = options, labels, model, weights_sha256
        self.settings = dict(settings or {}) | {"monitor": options.record()}
        self.privacy = None if options.privacy is None else privacy_thresholds(options.privacy, labels)
        self.store: DetectionStore | None = None
        self.alerts: AlertHub | None = None
        self.monitors: list[Monitor] = []
        self._closed = False
        try:
            if options.store is not None:
                self.store = DetectionStore(options.store)
            if options.alerts:
                watched = list(options.alert_labels) if options.alert_labels is not None else []
                for name in watched:
                    try:
                        labels.index(name)
                    except LabelsError as e:
                        raise ConfigError(f"--alert-labels: {e}") from None
                self.alerts = AlertHub([], options.alert_labels, options.alert_cooldown_s)
                for url in options.alerts:
                    self.alerts.destinations.append(destination(url, watched))
        except BaseException:
            self.close()
            raise

    def monitor(self, source: str, events: EventSettings | None = None, hop_s: float | None = None,
                on_detection: Callable[[Detection], object] | None = None) -> Monitor:
        """A Monitor for one stream named `source` (its own clip buffer and privacy spans), with the events'
        settings the run's other event outputs use; subscribe it, and `close(end_s)` it after the last window."""
        o = self.options
        clips = None if o.clips is None else ClipWriter(o.clips, padding_s=o.clip_padding_s, max_bytes=o.max_bytes)
        gate = None if self.privacy is None else PrivacyGate(self.labels, self.privacy)
        settings = self.settings | {"events": _events_record(events, self.labels)}
        m = Monitor(self.labels, events, source=source, store=self.store, clips=clips, alerts=self.alerts,
                    privacy=gate, min_snr_db=o.min_snr_db, weights_sha256=self.weights_sha256, settings=settings,
                    on_detection=on_detection, hop_s=hop_s, owns_parts=False)
        self.monitors.append(m)
        return m

    def privacy_gate(self) -> PrivacyGate | None:
        """A gate judging windows as the monitors do (for guarding embedding outputs: `gate.guard(sink)`)."""
        return None if self.privacy is None else PrivacyGate(self.labels, self.privacy)

    @property
    def dropped_alerts(self) -> int:
        return 0 if self.alerts is None else self.alerts.dropped

    def alert_stats(self) -> dict[str, dict[str, int]]:
        """Per destination: messages sent, failed and dropped."""
        return {} if self.alerts is None else self.alerts.stats()

    def summary(self) -> str:
        """One line: events stored, clips, private windows, alerts per destination."""
        n = sum(m.stats.events for m in self.monitors)
        parts = [f"{n} events"]
        below = sum(m.stats.below_snr for m in self.monitors)
        if below:
            parts.append(f"{below} below --min-snr")
        if self.store is not None:
            parts.append(f"stored in {self.store.path}")
        if self.options.clips is not None:
            clips = sum(m.stats.clips for m in self.monitors)
            deleted = sum(m.stats.clips_deleted for m in self.monitors)
            parts.append(f"{clips} clips" + (f" ({deleted} old ones deleted)" if deleted else ""))
        if self.privacy is not None:
            parts.append(f"{sum(m.stats.private_windows for m in self.monitors)} private windows, "
                         f"{sum(m.stats.redacted for m in self.monitors)} events redacted")
        for name, st in self.alert_stats().items():
            parts.append(f"alerts to {name}: {st['sent']} sent, {st['failed']} failed, {st['dropped']} dropped")
        return "monitor: " + "; ".join(parts)

    def close(self) -> None:
        """Close every monitor not closed yet, flush and close the alerts (what is left is counted as dropped, and
        added to the last run's row), close the database."""
        if self._closed:
            return
        self._closed = True
        for m in self.monitors:
            m.close()
        if self.alerts is not None:
            before = self.alerts.dropped
            self.alerts.close()
            late = self.alerts.dropped - before
            if late and self.store is not None and self.monitors:
                self.store.add_dropped_alerts(late)
                self.monitors[-1].stats.dropped_alerts += late
        if self.store is not None:
            self.store.close()


def _events_record(events: EventSettings | None, labels: Labels) -> dict[str, Any]:
    e = events or EventSettings()
    return {"on": e.on, "off": e.off, "min_duration_s": e.min_duration_s, "max_gap_s": e.max_gap_s,
            "median": e.median, "labels": None if e.labels is None else [labels.names[i] for i in e.labels],
            "per_class": {labels.names[i]: [on, off] for i, on, off in e.per_class}}
