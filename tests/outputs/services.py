"""Real services for the alert tests, on 127.0.0.1 and a free port: a mosquitto broker and an HTTP server."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

NO_MQTT_BROKER = "mosquitto is not installed"  # declared in tests/conftest.py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto is missing in CI: .ci/run installs it (Debian package mosquitto)")
        pytest.skip(f"{NO_MQTT_BROKER} (Debian: apt-get install mosquitto)")
    return found


class Broker:
    """A mosquitto process on 127.0.0.1:port; stop() and start() again keep the port."""

    def __init__(self, folder: Path) -> None:
        self.binary = mosquitto_binary()
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Recorder:
    """An MQTT client subscribed to '#' that records (topic, payload, retain) in arrival order."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("the test's MQTT subscriber could not subscribe")

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def on(self, topic: str) -> list[str]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Webhook:
    """An HTTP server on 127.0.0.1 recording JSON POSTs; `mode`: ok, slow (sleeps `delay_s`), or error (500)."""

    def __init__(self, mode: str = "ok", delay_s: float = 10.0) -> None:
        self.mode, self.delay_s = mode, delay_s
        self.posts: list[dict] = []
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.attempts += 1
                if hook.mode == "slow":
                    time.sleep(hook.delay_s)
                if hook.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    return
                hook.posts.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
