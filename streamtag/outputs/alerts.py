"""Alerts: each event's start and end sent to MQTT (with Home Assistant discovery), webhooks or a command.

Every destination has its own bounded queue and thread: a slow or dead destination never blocks the
pipeline; when its queue is full, new messages are dropped and counted.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import re
import shlex
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Iterable
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError
from .detection import Detection, EventStart

log = logging.getLogger("streamtag")
DEFAULT_QUEUE = 256  # messages waiting per destination
_STOP = object()


def slug(label: str) -> str:
    """A label as a topic / id component: lower case, runs of other characters as `_`."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "label"


class Destination:
    """A bounded queue and a sending thread; subclasses implement `deliver(kind, message)`."""

    name = "destination"

    def __init__(self, max_queue: int = DEFAULT_QUEUE) -> None:
        if max_queue < 1:
            raise ConfigError(f"an alert queue must hold at least one message, got {max_queue}")
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.sent = 0
        self.failed = 0  # messages given up on after their retries
        self.dropped = 0  # messages dropped because the queue was full (or left at close)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._count_lock = threading.Lock()
        self._busy = False  # a message is being delivered
        self._abandoned = False  # close() gave up on the message being delivered

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"streamtag-alert-{self.name}", daemon=True)
            self._thread.start()

    def submit(self, kind: str, message: dict[str, Any]) -> bool:
        """Queue a message (never blocks); False, and counted as dropped, when the queue is full."""
        self.start()
        try:
            self._queue.put_nowait((kind, message))
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            kind, message = item
            self._busy = True
            try:
                ok = self.deliver(kind, message)
            except Exception as e:  # noqa: BLE001 - a destination's failure is counted, never raised
                ok = False
                log.warning("alert to %s failed: %s", self.name, e)
            with self._count_lock:
                self._busy = False
                if self._abandoned:
                    return  # counted as dropped by close()
                if ok:
                    self.sent += 1
                else:
                    self.failed += 1

    def deliver(self, kind: str, message: dict[str, Any]) -> bool:
        raise NotImplementedError

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued for up to `timeout` s, then stop; what is left is counted as dropped."""
        if self._thread is not None:
            deadline = time.monotonic() + timeout
            while self._thread.is_alive():
                try:
                    self._queue.put(_STOP, timeout=0.05)
                    break
                except queue.Full:
                    if time.monotonic() > deadline:
                        break
            self._thread.join(max(0.0, deadline - time.monotonic()))
            self._stopping.set()  # a delivery still waiting (a dead broker, a backoff) gives up now
            self._thread.join(0.5)
            with self._count_lock:
                if self._thread.is_alive() and self._busy:  # stuck (a slow server): counted as dropped
                    self._abandoned = True
                    self.dropped += 1
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    self.dropped += 1
        self._stopping.set()
        self.shutdown()

    def shutdown(self) -> None:
        """Release connections (after the queue is done)."""


class WebhookAlerts(Destination):
    """A JSON POST per event start and end to an http(s) URL, with a timeout and retries with backoff."""

    name = "webhook"

    def __init__(self, url: str, timeout_s: float = 5.0, retries: int = 3, backoff_s: float = 0.5,
                 max_queue: int = DEFAULT_QUEUE) -> None:
        super().__init__(max_queue)
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise ConfigError(f"a webhook needs an http:// or https:// URL, got {url!r}")
        if timeout_s <= 0 or retries < 0 or backoff_s < 0:
            raise ConfigError("webhook timeout must be > 0 s, retries and backoff >= 0")
        self.url, self.timeout_s, self.retries, self.backoff_s = url, timeout_s, retries, backoff_s
        self.name = f"webhook {urlsplit(url).hostname}"

    def deliver(self, kind: str, message: dict[str, Any]) -> bool:
        body = json.dumps({"type": kind, **message}).encode()
        for attempt in range(self.retries + 1):
            if attempt:
                if self._stopping.wait(self.backoff_s * 2 ** (attempt - 1)):
                    return False
            try:
                req = urllib.request.Request(self.url, data=body, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "User-Agent": "streamtag"})
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    if 200 <= resp.status < 300:
                        return True
            except (urllib.error.URLError, OSError, ValueError) as e:
                log.debug("webhook %s attempt %d: %s", self.url, attempt + 1, e)
        return False


class ExecAlerts(Destination):
    """Runs a command per event start and end, with the event in its environment (STREAMTAG_EVENT: JSON,
    STREAMTAG_TYPE, STREAMTAG_LABEL, STREAMTAG_ONSET_S, STREAMTAG_OFFSET_S, STREAMTAG_CLIP)."""

    name = "exec"

    def __init__(self, command: str, timeout_s: float = 30.0, max_queue: int = DEFAULT_QUEUE) -> None:
        super().__init__(max_queue)
        try:
            self.argv = shlex.split(command)
        except ValueError as e:
            raise ConfigError(f"exec alert: cannot parse the command {command!r}: {e}") from None
        if not self.argv:
            raise ConfigError("exec alert: the command is empty (exec:COMMAND)")
        self.timeout_s = timeout_s

    def deliver(self, kind: str, message: dict[str, Any]) -> bool:
        env = dict(os.environ, STREAMTAG_EVENT=json.dumps({"type": kind, **message}), STREAMTAG_TYPE=kind,
                   STREAMTAG_LABEL=str(message.get("label", "")), STREAMTAG_ONSET_S=str(message.get("onset_s", "")),
                   STREAMTAG_OFFSET_S=str(message.get("offset_s", "") or ""),
                   STREAMTAG_CLIP=str(message.get("clip") or ""))
        try:
            done = subprocess.run(self.argv, env=env, timeout=self.timeout_s, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            log.warning("exec alert %s: %s", self.argv[0], e)
            return False
        return done.returncode == 0


class MqttAlerts(Destination):
    """MQTT: `<topic>/events` gets a JSON message per event start and end; `<topic>/availability` is retained
    `online` (and `offline`, the broker's last will); each label gets `<topic>/<label>/state` (ON/OFF) and
    `<topic>/<label>/attributes` (its last score...), announced to Home Assistant by MQTT discovery
    (`<discovery>/binary_sensor/<node>/<label>/config`, retained) as a binary sensor. Reconnects by itself."""

    name = "mqtt"

    def __init__(self, url: str, labels: Iterable[str] = (), node_id: str = "streamtag",
                 discovery_prefix: str | None = "homeassistant", max_queue: int = DEFAULT_QUEUE,
                 client_id: str | None = None) -> None:
        super().__init__(max_queue)
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"an MQTT alert needs mqtt://[user:pass@]host[:port]/topic, got {url!r}")
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            from ..errors import DependencyError
            raise DependencyError("MQTT alerts need paho-mqtt: pip install 'streamtag[alerts]'") from None
        self.topic = parts.path.strip("/") or "streamtag"
        self.node_id, self.discovery_prefix = slug(node_id), discovery_prefix
        self.availability = f"{self.topic}/availability"
        self._announced: set[str] = set()
        self._connected = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "")
        if parts.username:
            self._client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        if parts.scheme == "mqtts":
            self._client.tls_set()
        self._client.will_set(self.availability, "offline", qos=1, retain=True)
        self._client.reconnect_delay_set(0.2, 2)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = lambda *a: self._connected.clear()
        self._client.connect_async(parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883), 30)
        self._client.loop_start()
        self.name = f"mqtt {parts.hostname}:{parts.port or 1883}"
        for label in labels:
            self.submit("announce", {"label": label})

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if not reason_code.is_failure:
            self._announced.clear()  # a restarted broker may have lost the retained discovery configs
            client.publish(self.availability, "online", qos=1, retain=True)
            self._connected.set()

    def _publish(self, topic: str, payload: str, retain: bool = False) -> bool:
        """Publish once connected (waits while the broker is away: the queue absorbs, then drops)."""
        while not self._stopping.is_set():
            if not self._connected.wait(0.2):
                continue
            info = self._client.publish(topic, payload, qos=1, retain=retain)
            if info.rc == 0:
                return True
            time.sleep(0.1)  # not connected after all: wait for the reconnect
        return False

    def _announce(self, label: str) -> bool:
        if label in self._announced or self.discovery_prefix is None:
            return True
        s = slug(label)
        config = {
            "name": label, "unique_id": f"{self.node_id}_{s}", "object_id": f"{self.node_id}_{s}",
            "state_topic": f"{self.topic}/{s}/state", "payload_on": "ON", "payload_off": "OFF",
            "json_attributes_topic": f"{self.topic}/{s}/attributes",
            "availability_topic": self.availability, "payload_available": "online",
            "payload_not_available": "offline", "device_class": "sound",
            "device": {"identifiers": [self.node_id], "name": f"streamtag {self.node_id}", "manufacturer": "streamtag"},
        }
        ok = self._publish(f"{self.discovery_prefix}/binary_sensor/{self.node_id}/{s}/config", json.dumps(config),
                           retain=True)
        if ok:
            self._announced.add(label)
        return ok

    def deliver(self, kind: str, message: dict[str, Any]) -> bool:
        label = str(message["label"])
        if kind == "announce":
            return self._announce(label)
        s = slug(label)
        ok = self._announce(label) and self._publish(f"{self.topic}/events", json.dumps({"type": kind, **message}))
        state = "ON" if kind == "start" else "OFF"
        score = message.get("score", message.get("peak"))
        ok = ok and self._publish(f"{self.topic}/{s}/attributes", json.dumps({"last_score": score, **message}),
                                  retain=True)
        return ok and self._publish(f"{self.topic}/{s}/state", state, retain=True)

    def shutdown(self) -> None:
        if self._connected.is_set():
            info = self._client.publish(self.availability, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()


def destination(url: str, labels: Iterable[str] = (), max_queue: int = DEFAULT_QUEUE) -> Destination:
    """The destination an `--alert` URL names: mqtt(s)://, http(s)://, exec:COMMAND."""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("mqtt", "mqtts"):
        return MqttAlerts(url, labels, max_queue=max_queue)
    if scheme in ("http", "https"):
        return WebhookAlerts(url, max_queue=max_queue)
    if scheme == "exec":
        return ExecAlerts(url.split(":", 1)[1], max_queue=max_queue)
    raise ConfigError(f"unknown alert destination {url!r}: use mqtt://host:port/topic, http(s)://..., "
                      "or exec:COMMAND")


class AlertHub:
    """Sends event starts and ends to every destination: only `labels` (all when None), and per label at most
    one alert per `cooldown_s` (an event starting within it is not announced; neither is its end)."""

    def __init__(self, destinations: Iterable[Destination], labels: Iterable[str] | None = None,
                 cooldown_s: float = 0.0) -> None:
        self.destinations = list(destinations)
        if cooldown_s < 0:
            raise ConfigError(f"alert cooldown must be >= 0 s, got {cooldown_s}")
        self.labels = None if labels is None else {lbl.lower() for lbl in labels}
        self.cooldown_s = cooldown_s
        self._last_start: dict[str, float] = {}
        self._open: set[str] = set()
        self.suppressed = 0

    def _wanted(self, label: str) -> bool:
        return self.labels is None or label.lower() in self.labels

    def start(self, e: EventStart) -> None:
        if not self._wanted(e.label):
            return
        last = self._last_start.get(e.label)
        if last is not None and e.onset_s - last < self.cooldown_s:
            self.suppressed += 1
            return
        self._last_start[e.label] = e.onset_s
        self._open.add(e.label)
        for d in self.destinations:
            d.submit("start", e.message())

    def end(self, d: Detection) -> None:
        if d.label not in self._open:
            return
        self._open.discard(d.label)
        for dest in self.destinations:
            dest.submit("end", d.message())

    @property
    def dropped(self) -> int:
        return sum(d.dropped for d in self.destinations)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per destination: messages sent, failed (after retries), dropped (queue full or left at the end)."""
        return {d.name: {"sent": d.sent, "failed": d.failed, "dropped": d.dropped} for d in self.destinations}

    def close(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for d in self.destinations:
            d.close(max(0.1, deadline - time.monotonic()))
