"""Outputs: sinks are ordinary subscribers that write results to files or streams."""
from .live_view import LiveView
from .events import Event, EventDetector, EventSettings, EventSubscriber
from .sinks import CSV_COLUMNS, AtomicFile, CsvSink, JsonlSink, NpzSink, TagFilter, TextSink, open_text
from .monitor import Detection, EventStart, Monitor, NoiseFloor
from .store import DetectionStore
from .clips import ClipWriter
from .privacy import PrivacyGate
from .alerts import AlertHub, ExecAlerts, MqttAlerts, WebhookAlerts

__all__ = ["AlertHub", "AtomicFile", "CSV_COLUMNS", "ClipWriter", "CsvSink", "Detection", "DetectionStore", "Event",
           "EventDetector", "EventSettings", "EventStart", "EventSubscriber", "ExecAlerts", "JsonlSink", "LiveView",
           "Monitor", "MqttAlerts", "NoiseFloor", "NpzSink", "PrivacyGate", "TagFilter", "TextSink", "WebhookAlerts",
           "open_text"]
