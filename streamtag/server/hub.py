"""One source's view for the server: a subscriber that turns windows into API messages (with events, level and
log-mel columns) and keeps the source's health (windows, lost audio, latency, reconnects)."""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..models.labels import Labels
from ..outputs.detection import Detection
from ..outputs.events import Event, EventDetector, EventSettings
from ..outputs.privacy import PrivacyGate
from ..pipeline.dispatcher import FrontEndSubscriber
from ..pipeline.result import FrontEndBatch, TaggerStats, WindowResult

MEL_BANDS = 64  # log-mel rows sent to dashboards (the model's bands averaged in pairs)
MEL_RANGE = (-1.5, 1.5)  # EfficientAT's normalised log-mel values mapped to 0..255
LATENCIES_KEPT = 2000


@dataclass(frozen=True)
class Message:
    """What a hub hands the server's loop: `kind` window | event | mel | status, for source `source`."""

    kind: str
    source: str
    run: int
    payload: object  # WindowResult, dict (events, status) or (first_frame, uint8 [bands, G]) for mel


class SourceHub(FrontEndSubscriber):
    """The subscriber of one source's pipeline (each run of it): forwards every window, its level, the events
    that open and close, and new log-mel columns to `post`, which must not block (the server's loop takes them)."""

    def __init__(self, name: str, kind: str, input: str, labels: Labels, post: Callable[[Message], None],
                 events: EventSettings, hop_s: float, window_s: float, model: str) -> None:
        self.name, self.kind, self.input = name, kind, input
        self.labels, self.post, self.hop_s, self.window_s, self.model = labels, post, hop_s, window_s, model
        self._settings = events
        self.run = -1
        self.state = "starting"  # starting | running | reconnecting | waiting | ended | failed | stopped
        self.error: str | None = None
        self.windows = 0
        self.lost_samples = 0
        self.lost_gap_s = 0.0  # time without audio between runs (the input gone)
        self.reconnects = 0
        self.stream_reconnects = 0  # reconnects a network stream made within a run
        self.sample_rate = 32000
        self.last_level_db: float | None = None
        self.top: list[tuple[str, float]] = []
        self._latencies: deque[float] = deque(maxlen=LATENCIES_KEPT)
        self._levels: dict[int, float] = {}  # window index -> level (dBFS) of its newest hop
        self._last_frame = -1
        self._spec_window = 0
        self._spec_hop = 0
        self._detector: EventDetector | None = None
        self._finished = TaggerStats()
        self._lock = threading.Lock()
        self.started = time.time()
        self.clip_url: str | None = None  # "/api/clips/{id}?source=..." when the source stores events and clips
        self.privacy: PrivacyGate | None = None  # private windows: no embedding sent, and no log-mel at all
        self._detections: dict[tuple[str, float], Detection] = {}  # stored by the source's Monitor, by event

    # -- runs --------------------------------------------------------------------------
    def begin_run(self, sample_rate: int, window: int, hop: int) -> None:
        """A new run of the source (its first, or after the input came back): window indices start again at 0."""
        with self._lock:
            self.run += 1
            self.sample_rate, self._spec_window, self._spec_hop = sample_rate, window, hop
            self._levels.clear()
            self._last_frame = -1
            self._detector = EventDetector(self.labels, self._settings, self._opened, hop_s=self.hop_s)
            self._detections.clear()
        self.set_state("running")

    def end_run(self, stats: TaggerStats, end_s: float | None = None) -> None:
        """The run ended: the events still open are closed; its loss is added to the totals."""
        with self._lock:
            detector, self._detector = self._detector, None
            self.lost_samples += stats.lost_samples
        if detector is not None:
            for ev in detector.flush(end_s):
                self._closed(ev)

    def set_state(self, state: str, error: str | None = None) -> None:
        self.state, self.error = state, error
        self.post(Message("status", self.name, self.run, self.status()))

    # -- the subscriber ----------------------------------------------------------------
    def __call__(self, r: WindowResult) -> None:
        self.windows += 1
        if r.latency_s is not None:
            self._latencies.append(r.latency_s)
        level = self._levels.pop(r.index, None)
        self.last_level_db = level
        self.top = r.top(5)
        if self.privacy is not None and self.privacy.is_private(r):
            r = replace(r, embedding=np.full_like(r.embedding, np.nan), frames=None, frame_times=None)
        self.post(Message("window", self.name, self.run, (r, level)))
        detector = self._detector
        if detector is not None:
            for ev in detector.update(r):
                self._closed(ev)

    def on_frontend(self, batch: FrontEndBatch) -> None:
        """Levels of the batch's windows (RMS of each one's newest hop, dBFS) and its new log-mel columns."""
        win, hop = self._spec_window, self._spec_hop
        if win and hop:
            first = -(-batch.start_sample // hop)
            k = first
            while k * hop + win <= batch.start_sample + len(batch.audio):
                a = k * hop + win - min(hop, win) - batch.start_sample
                piece = batch.audio[max(a, 0):a + min(hop, win)]
                rms = float(np.sqrt(np.mean(np.square(piece, dtype=np.float64)))) if len(piece) else 0.0
                self._levels[k] = 20 * math.log10(max(rms, 1e-6))
                k += 1
            if len(self._levels) > 512:  # windows never published (a stopped run)
                for key in sorted(self._levels)[:-256]:
                    self._levels.pop(key, None)
        if batch.mel is not None and batch.first_frame is not None and self.privacy is None:
            end = batch.first_frame + batch.mel.shape[1]
            if end > self._last_frame + 1:
                start = max(batch.first_frame, self._last_frame + 1)
                cols = np.asarray(batch.mel[:, start - batch.first_frame:], np.float32)
                self._last_frame = end - 1
                self.post(Message("mel", self.name, self.run, (start, mel_bytes(cols))))

    def close(self) -> None:
        """Subscriber protocol: nothing to release."""

    def detected(self, d: Detection) -> None:
        """The source's Monitor stored an event (its `on_detection`, called before this hub sees the same window):
        the close message for it then carries its id, level, SNR and clip URL."""
        self._detections[(d.label, d.onset_s)] = d

    # -- events ------------------------------------------------------------------------
    def _opened(self, label: str, onset_s: float) -> None:
        self.post(Message("event", self.name, self.run, {"state": "open", "label": label,
                                                           "onset_s": round(onset_s, 6)}))

    def _closed(self, ev: Event) -> None:
        body = {"state": "close", **event_dict(ev)}
        d = self._detections.pop((ev.label, ev.onset_s), None)
        if d is not None:
            body.update(id=d.id, level_db=d.level_db, snr_db=d.snr_db, redacted=d.redacted,
                        onset_utc=None if d.onset_utc is None else d.onset_utc.isoformat())
            if self.clip_url is not None and d.id is not None:
                body["clip_url"] = self.clip_url.format(id=d.id)
        self.post(Message("event", self.name, self.run, body))

    # -- health ------------------------------------------------------------------------
    def latency_ms(self) -> tuple[float | None, float | None]:
        lat = list(self._latencies)
        if not lat:
            return None, None
        p50, p95 = np.percentile(np.asarray(lat) * 1e3, [50, 95])
        return round(float(p50), 2), round(float(p95), 2)

    def status(self, current: TaggerStats | None = None) -> dict:
        """The source's health: state, windows, lost audio (s), latency p50/p95 (ms), reconnects."""
        p50, p95 = self.latency_ms()
        lost = self.lost_samples + (current.lost_samples if current is not None else 0)
        return {"name": self.name, "kind": self.kind, "input": self.input, "model": self.model,
                "window_s": self.window_s, "hop_s": self.hop_s, "state": self.state, "error": self.error,
                "run": self.run, "windows": self.windows,
                "lost_s": round(lost / self.sample_rate + self.lost_gap_s, 3),
                "latency_ms": {"p50": p50, "p95": p95},
                "reconnects": self.reconnects + self.stream_reconnects,
                "level_db": None if self.last_level_db is None else round(self.last_level_db, 1),
                "top": [[n, round(s, 4)] for n, s in self.top]}


def event_dict(ev: Event) -> dict:
    return {"label": ev.label, "mid": ev.mid, "onset_s": ev.onset_s, "offset_s": ev.offset_s,
            "peak": float(ev.peak), "mean": float(ev.mean), "first_window": ev.first_window,
            "last_window": ev.last_window}


def mel_bytes(cols: np.ndarray) -> np.ndarray:
    """Log-mel columns [n_mels, G] -> uint8 [MEL_BANDS, G] (bands averaged, values mapped from MEL_RANGE)."""
    n = cols.shape[0]
    if n >= MEL_BANDS and n % MEL_BANDS == 0:
        cols = cols.reshape(MEL_BANDS, n // MEL_BANDS, -1).mean(axis=1)
    lo, hi = MEL_RANGE
    return np.clip((cols - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
