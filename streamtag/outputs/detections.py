"""Event outputs in the conventions other tools read: JSONL/CSV events, Audacity labels, Raven tables."""
from __future__ import annotations

import csv
import json
from typing import IO

from .events import Event

RAVEN_COLUMNS = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                 "High Freq (Hz)", "label", "score", "Begin Path", "File Offset (s)"]
EVENT_CSV_COLUMNS = ["file", "model", "label", "mid", "onset_s", "offset_s", "peak", "mean", "first_window",
                     "last_window"]


def write_events_jsonl(out: IO[str], events: list[Event], source: str, model: str) -> None:
    for e in events:
        out.write(json.dumps({"file": source, "model": model, "label": e.label, "mid": e.mid, "onset_s": e.onset_s,
                              "offset_s": e.offset_s, "peak": round(e.peak, 6), "mean": round(e.mean, 6),
                              "first_window": e.first_window, "last_window": e.last_window},
                             ensure_ascii=False) + "\n")


def write_events_csv(out: IO[str], events: list[Event], source: str, model: str, header: bool = True) -> None:
    w = csv.writer(out, lineterminator="\n")
    if header:
        w.writerow(EVENT_CSV_COLUMNS)
    for e in events:
        w.writerow([source, model, e.label, e.mid, f"{e.onset_s:.3f}", f"{e.offset_s:.3f}", f"{e.peak:.4f}",
                    f"{e.mean:.4f}", e.first_window, e.last_window])


def write_audacity(out: IO[str], events: list[Event]) -> None:
    """Audacity label track: `start<TAB>end<TAB>label` per line, seconds, no header (File > Import > Labels)."""
    for e in events:
        out.write(f"{e.onset_s:.6f}\t{e.offset_s:.6f}\t{e.label} ({e.peak:.2f})\n")


def write_raven(out: IO[str], events: list[Event], source: str, max_freq_hz: float) -> None:
    """Raven selection table (tab-separated, the columns BirdNET-Analyzer writes)."""
    w = csv.writer(out, delimiter="\t", lineterminator="\n")
    w.writerow(RAVEN_COLUMNS)
    for i, e in enumerate(events, 1):
        w.writerow([i, "Spectrogram 1", 1, f"{e.onset_s:.4f}", f"{e.offset_s:.4f}", "0", f"{max_freq_hz:.1f}",
                    e.label, f"{e.peak:.4f}", source, f"{e.onset_s:.4f}"])
