"""Event outputs in the conventions other tools read: JSONL/CSV events, Audacity labels, Raven tables."""
from __future__ import annotations

import csv
import json
import os
from datetime import datetime, timedelta
from typing import IO

from .events import Event
from .sinks import utc_text

RAVEN_COLUMNS = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                 "High Freq (Hz)", "label", "score", "Begin Path", "File Offset (s)"]
RAVEN_DATE_COLUMN = "Begin Date Time"  # Raven's wall-clock measurement, yyyy/MM/dd HH:mm:ss.SSS
EVENT_CSV_COLUMNS = ["file", "model", "label", "mid", "onset_s", "offset_s", "peak", "mean", "first_window",
                     "last_window"]
EVENT_UTC_COLUMNS = ["onset_utc", "offset_utc"]  # after offset_s, for recordings with a wall-clock start


def _at(start_utc: datetime | None, seconds: float) -> str:
    return "" if start_utc is None else utc_text(start_utc + timedelta(seconds=seconds))


def write_events_jsonl(out: IO[str], events: list[Event], source: str, model: str,
                       start_utc: datetime | None = None) -> None:
    """One JSON object per event; onset_utc/offset_utc too when the recording's UTC start is known."""
    for e in events:
        rec = {"file": source, "model": model, "label": e.label, "mid": e.mid, "onset_s": e.onset_s,
               "offset_s": e.offset_s}
        if start_utc is not None:
            rec |= {"onset_utc": _at(start_utc, e.onset_s), "offset_utc": _at(start_utc, e.offset_s)}
        rec |= {"peak": round(e.peak, 6), "mean": round(e.mean, 6), "first_window": e.first_window,
                "last_window": e.last_window}
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")


def write_events_csv(out: IO[str], events: list[Event], source: str, model: str, header: bool = True,
                     utc: bool = False, start_utc: datetime | None = None) -> None:
    """One row per event; `utc` adds onset_utc/offset_utc columns (empty without a known start)."""
    w = csv.writer(out, lineterminator="\n")
    if header:
        w.writerow(EVENT_CSV_COLUMNS[:6] + EVENT_UTC_COLUMNS + EVENT_CSV_COLUMNS[6:] if utc else EVENT_CSV_COLUMNS)
    for e in events:
        times = [f"{e.onset_s:.3f}", f"{e.offset_s:.3f}"]
        if utc:
            times += [_at(start_utc, e.onset_s), _at(start_utc, e.offset_s)]
        w.writerow([source, model, e.label, e.mid, *times, f"{e.peak:.4f}", f"{e.mean:.4f}", e.first_window,
                    e.last_window])


def write_audacity(out: IO[str], events: list[Event]) -> None:
    """Audacity label track: `start<TAB>end<TAB>label` per line, seconds, no header (File > Import > Labels)."""
    for e in events:
        out.write(f"{e.onset_s:.6f}\t{e.offset_s:.6f}\t{e.label} ({e.peak:.2f})\n")


def write_raven(out: IO[str], events: list[Event], source: str, max_freq_hz: float,
                start_utc: datetime | None = None) -> None:
    """Raven selection table (tab-separated, the columns BirdNET-Analyzer writes), with Raven's `Begin Date Time`
    (UTC) when the recording's start is known. `Begin Path` is the recording's absolute path (Raven opens the
    file from it wherever the table is), or the URL as given."""
    begin_path = source if "://" in source else os.path.abspath(source)
    w = csv.writer(out, delimiter="\t", lineterminator="\n")
    w.writerow(RAVEN_COLUMNS + ([RAVEN_DATE_COLUMN] if start_utc is not None else []))
    for i, e in enumerate(events, 1):
        when = [] if start_utc is None else \
            [(start_utc + timedelta(seconds=e.onset_s)).strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]]
        w.writerow([i, "Spectrogram 1", 1, f"{e.onset_s:.4f}", f"{e.offset_s:.4f}", "0", f"{max_freq_hz:.1f}",
                    e.label, f"{e.peak:.4f}", begin_path, f"{e.onset_s:.4f}", *when])
