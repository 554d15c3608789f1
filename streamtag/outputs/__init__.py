"""Outputs: sinks are ordinary subscribers that write results to files or streams."""
from .sinks import CSV_COLUMNS, AtomicFile, CsvSink, JsonlSink, NpzSink, TextSink, open_text

__all__ = ["AtomicFile", "CSV_COLUMNS", "CsvSink", "JsonlSink", "NpzSink", "TextSink", "open_text"]
