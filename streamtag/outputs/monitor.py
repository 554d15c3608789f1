"""Detections that act: a subscriber that turns windows into events with levels, then stores them, writes
their clips, sends alerts and keeps private audio out, each part optional."""
from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Callable, Protocol

import numpy as np

from ..audio.levels import mean_level
from ..errors import ConfigError
from ..models.labels import Labels
from ..pipeline.dispatcher import AudioTap
from ..pipeline.result import WindowResult
from .events import Event, EventDetector, EventSettings, window_slice


@dataclass(frozen=True)
class Detection:
    """A closed event with where it came from, its sound level and SNR, its clip, and the privacy flag."""

    label: str
    mid: str
    onset_s: float
    offset_s: float
    peak: float
    mean: float
    source: str = ""
    model: str = ""
    weights_sha256: str | None = None
    onset_utc: datetime | None = None
    offset_utc: datetime | None = None
    level_db: float | None = None  # mean power of the event's windows, dBFS RMS
    level_dba: float | None = None  # the same A-weighted
    noise_floor_db: float | None = None  # the running noise floor when the event began
    snr_db: float | None = None  # level_db - noise_floor_db
    redacted: bool = False  # part of its time was private: clip audio silenced there
    clip_path: str | None = None
    id: int | None = None  # its database row, when stored

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s

    def message(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (alerts, exports)."""
        out: dict[str, Any] = {"label": self.label, "mid": self.mid, "onset_s": round(self.onset_s, 3),
                               "offset_s": round(self.offset_s, 3), "duration_s": round(self.duration_s, 3),
                               "peak": round(self.peak, 4), "mean": round(self.mean, 4), "source": self.source,
                               "model": self.model, "redacted": self.redacted}
        for key in ("level_db", "level_dba", "noise_floor_db", "snr_db"):
            value = getattr(self, key)
            out[key] = None if value is None else round(value, 2)
        out["onset_utc"] = None if self.onset_utc is None else self.onset_utc.isoformat()
        out["offset_utc"] = None if self.offset_utc is None else self.offset_utc.isoformat()
        out["clip"] = self.clip_path
        out["id"] = self.id
        return out


@dataclass(frozen=True)
class EventStart:
    """An event that just opened (sent to alerts before it closes)."""

    label: str
    mid: str
    onset_s: float
    score: float
    source: str = ""
    model: str = ""
    onset_utc: datetime | None = None
    level_db: float | None = None
    snr_db: float | None = None

    def message(self) -> dict[str, Any]:
        return {"label": self.label, "mid": self.mid, "onset_s": round(self.onset_s, 3),
                "score": round(self.score, 4), "source": self.source, "model": self.model,
                "onset_utc": None if self.onset_utc is None else self.onset_utc.isoformat(),
                "level_db": None if self.level_db is None else round(self.level_db, 2),
                "snr_db": None if self.snr_db is None else round(self.snr_db, 2)}


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

    min_snr_db: events (and their start alerts) whose SNR is below it are dropped.
    """

    def __init__(self, labels: Labels, events: EventSettings | None = None, source: str = "",
                 store: Store | None = None, clips: Any = None, alerts: Alerts | None = None,
                 privacy: Any = None, min_snr_db: float | None = None, noise_floor: NoiseFloor | None = None,
                 weights_sha256: str | None = None, settings: dict | None = None,
                 on_detection: Callable[[Detection], object] | None = None, hop_s: float | None = None) -> None:
        if min_snr_db is not None and not -200 <= min_snr_db <= 200:
            raise ConfigError(f"--min-snr must be a level difference in dB, got {min_snr_db}")
        self.labels, self.source = labels, source
        self.store, self.clips, self.alerts, self.privacy = store, clips, alerts, privacy
        self.min_snr_db, self.weights_sha256 = min_snr_db, weights_sha256
        self.settings = dict(settings or {})
        self.on_detection = on_detection
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
                self.alerts.close()
                self.stats.dropped_alerts = self.alerts.dropped
            if self.store is not None:
                if self.stats.windows:
                    self.store.end_run(self.stats.windows, self.stats.lost_samples, self.stats.dropped_alerts)
                self.store.close()

    # -- events -------------------------------------------------------------------------
    def _begin(self, r: WindowResult) -> None:
        self._model = r.model
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
