"""Each source's pipeline in a thread of its own: opened, tagged, and restarted when its input drops or
disappears, with the gap counted. Sources that use the same model share one loaded copy."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..audio.inputs import InputOptions, open_audio
from ..audio.sources import AudioSource
from ..errors import StreamtagError
from ..index.live import ExampleEvents, Examples
from ..models.labels import Labels
from ..models.loader import RunTarget
from ..outputs.events import EventSettings
from ..outputs.monitor import Monitoring, model_weights_sha256
from ..pipeline.dispatcher import Subscription
from ..pipeline.tagger import Tagger
from .config import SourceConfig
from .hub import Message, SourceHub
from .realtime import RealtimeSource

log = logging.getLogger("streamtag.server")
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)  # then every 4 s


def open_input(cfg: SourceConfig) -> AudioSource:
    """The source's input: a network stream, a file (at real time with `realtime`) or an input device."""
    if cfg.kind == "network":
        return open_audio(cfg.input, InputOptions(reconnect=cfg.reconnect, buffer_s=cfg.buffer_s))
    if cfg.kind == "file":
        src = open_audio(cfg.input)
        return RealtimeSource(src) if cfg.realtime else src
    from ..audio.microphone import MicrophoneSource
    return MicrophoneSource(None if cfg.input == "default" else cfg.input, buffer_s=cfg.buffer_s)


class ModelPool:
    """One loaded model per (model choice, window, hop): later sources get a `Tagger` of their own built on the first
    one's loaded model (an export or a torch model is safe to call from several streams at once)."""

    def __init__(self, labels: Labels, target: RunTarget = RunTarget()) -> None:
        self.labels, self.target = labels, target
        self._taggers: dict[tuple, Tagger] = {}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> int:
        return len(self._taggers)

    def tagger(self, cfg: SourceConfig) -> Tagger:
        with self._lock:
            first = self._taggers.get(cfg.model_key)
            if first is None:
                first = Tagger(cfg.model, cfg.window_s, cfg.hop_s, labels=self.labels, target=self.target,
                               ring_seconds=cfg.buffer_s)
                first.warm_up()
                self._taggers[cfg.model_key] = first
                return first
            return Tagger(first.model, cfg.window_s, cfg.hop_s, labels=first.labels, ring_seconds=cfg.buffer_s,
                          target=first.target, batch_size=first.batch_size)


class SourceRunner:
    """Runs one source until `stop()`: a failed open or a dropped input is retried with backoff (the time without
    audio counted as lost, the restart as a reconnect); a file ends the source (or starts again with `loop`)."""

    def __init__(self, cfg: SourceConfig, pool: ModelPool, post: Callable[[Message], None]) -> None:
        self.cfg, self.pool = cfg, pool
        self.tagger: Tagger | None = None
        assert cfg.window_s is not None and cfg.hop_s is not None  # resolved by SourceConfig
        self.hub = SourceHub(cfg.name, cfg.kind, cfg.input, pool.labels, post, cfg.events, cfg.hop_s, cfg.window_s,
                             cfg.model.describe() or "default")
        self._stop = threading.Event()
        self._source: AudioSource | None = None
        self._thread = threading.Thread(target=self._run, name=f"streamtag-serve-{cfg.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.tagger is not None:
            self.tagger.stop()
        src = self._source
        if src is not None:
            src.close()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def status(self) -> dict:
        t, src = self.tagger, self._source
        running = t is not None and self.hub.state == "running"
        out = self.hub.status(t.stats if running else None)
        if running:
            out["reconnects"] += getattr(src, "reconnects", 0)
        return out

    def _run(self) -> None:
        hub, cfg = self.hub, self.cfg
        try:
            self.tagger = self.pool.tagger(cfg)
            monitoring = self._monitoring(self.tagger)
        except StreamtagError as e:
            hub.set_state("failed", str(e))
            return
        except Exception as e:
            log.exception("source %s: the model could not be loaded", cfg.name)
            hub.set_state("failed", f"{type(e).__name__}: {e}")
            return
        hub.model, hub.labels = self.tagger.model_name, self.tagger.labels
        finder = None
        if cfg.examples:  # query-by-example: its events go where the label events go
            try:
                finder = ExampleEvents(Examples.from_files(self.tagger, cfg.examples), cfg.similarity,
                                       EventSettings(min_duration_s=cfg.min_event_s), callback=hub._closed,
                                       hop_s=cfg.hop_s, on_open=hub._opened)
            except StreamtagError as e:
                hub.set_state("failed", str(e))
                if monitoring is not None:
                    monitoring.close()
                return
            self.tagger.subscribe(finder)
        try:
            self._runs(monitoring)
        finally:
            if monitoring is not None:
                monitoring.close()
        hub.set_state(hub.state if hub.state in ("ended", "failed") else "stopped")

    def _monitoring(self, tagger: Tagger) -> Monitoring | None:
        """The source's detections database, clips, alerts and privacy gate (None when it asks for none)."""
        o = self.cfg.monitor
        if not o.enabled:
            return None
        spec = tagger.window
        monitoring = o.open(tagger.labels, model=tagger.model_name, weights_sha256=model_weights_sha256(tagger.model),
                            settings={"source": self.cfg.input, "window_s": spec.window_s, "hop_s": spec.hop_s,
                                      "command": "serve"})
        self.hub.privacy = monitoring.privacy_gate()
        if o.store is not None and o.clips is not None:
            self.hub.clip_url = "/api/clips/{id}?source=" + self.cfg.name
        return monitoring

    def _runs(self, monitoring: Monitoring | None) -> None:
        hub, cfg, tagger = self.hub, self.cfg, self.tagger
        assert tagger is not None
        failures, dropped_at = 0, None
        while not self._stop.is_set():
            try:
                self._source = open_input(cfg)
            except StreamtagError as e:
                if dropped_at is None:
                    dropped_at = time.monotonic()
                hub.set_state("waiting" if hub.run < 0 else "reconnecting", str(e))
                if self._stop.wait(RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]):
                    break
                failures += 1
                continue
            if dropped_at is not None and hub.run >= 0:
                hub.lost_gap_s += time.monotonic() - dropped_at
                hub.reconnects += 1
            dropped_at, error = None, None
            spec = tagger.window
            hub.begin_run(tagger.sample_rate, spec.window, spec.hop)
            monitor = None if monitoring is None else monitoring.monitor(cfg.name, cfg.events, hop_s=spec.hop_s,
                                                                         on_detection=hub.detected)
            # the monitor sees each window before the hub, so that the hub's close message can name the stored event
            subscriptions = [tagger.subscribe(m) for m in (monitor, hub) if m is not None]
            try:
                tagger.start(self._source)
                while not tagger.join(timeout=0.5):
                    if self._stop.is_set():
                        break
            except StreamtagError as e:
                error = str(e)
            except Exception as e:
                log.exception("source %s failed", cfg.name)
                error = f"{type(e).__name__}: {e}"
            finally:
                tagger.stop(wait=10.0)
                for sub in subscriptions:
                    sub.unsubscribe()
                end_s = tagger.stats.audio_s if error is None else None
                if monitor is not None:
                    monitor.close(end_s)
                hub.stream_reconnects += getattr(self._source, "reconnects", 0)
                hub.end_run(tagger.stats, end_s)
            if self._stop.is_set():
                break
            if error is None and (cfg.kind == "file" or cfg.kind == "network"):
                if cfg.kind == "file" and cfg.loop:
                    continue
                hub.set_state("ended")
                return
            failures = 0
            dropped_at = time.monotonic()
            hub.set_state("reconnecting", error or "the input ended")
            if self._stop.wait(RESTART_BACKOFF_S[0]):
                break


class AttachedSource:
    """A source whose pipeline someone else runs (`listen --serve`): the hub subscribes to that `Tagger` while the
    server runs, and follows its run's health."""

    def __init__(self, tagger: Tagger, name: str, kind: str, input: str, post: Callable[[Message], None],
                 events: EventSettings) -> None:
        self.tagger = tagger
        spec = tagger.window
        self.hub = SourceHub(name, kind, input, tagger.labels, post, events, spec.hop_s, spec.window_s,
                             tagger.model_name)
        self._subscription: Subscription | None = None

    def start(self) -> None:
        """Subscribe the hub (before the Tagger starts, so that it sees every window)."""
        spec = self.tagger.window
        self.hub.begin_run(self.tagger.sample_rate, spec.window, spec.hop)
        self._subscription = self.tagger.subscribe(self.hub)

    def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.unsubscribe()
            self._subscription = None
            self.hub.end_run(self.tagger.stats, self.tagger.stats.audio_s)
            self.hub.set_state("stopped")

    def join(self, timeout: float | None = None) -> None:
        """Nothing to wait for: the pipeline is its owner's."""

    def status(self) -> dict:
        return self.hub.status(self.tagger.stats if self.hub.state == "running" else None)
