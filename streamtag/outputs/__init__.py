"""Outputs: sinks are ordinary subscribers that write results to files or streams."""
from .live_view import LiveView
from .sinks import CSV_COLUMNS, AtomicFile, CsvSink, JsonlSink, NpzSink, TextSink, open_text

__all__ = ["AtomicFile", "LiveView", "CSV_COLUMNS", "CsvSink", "JsonlSink", "NpzSink", "TextSink", "open_text"]
