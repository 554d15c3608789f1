"""Outputs: sinks are ordinary subscribers that write results to files or streams."""
from .live_view import LiveView
from .events import Event, EventDetector, EventSettings, EventSubscriber
from .sinks import CSV_COLUMNS, AtomicFile, CsvSink, JsonlSink, NpzSink, TagFilter, TextSink, open_text

__all__ = ["AtomicFile", "CSV_COLUMNS", "CsvSink", "Event", "EventDetector", "EventSettings", "EventSubscriber",
           "JsonlSink", "LiveView", "NpzSink", "TagFilter", "TextSink", "open_text"]
