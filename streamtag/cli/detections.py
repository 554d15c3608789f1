"""`streamtag detections`: query a detections database (`--store`): events by label, time and source, or a
summary per label."""
from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys

import click

from ..errors import OutputError
from ..outputs.store import EVENT_COLUMNS, DetectionStore
from .common import user_errors

TEXT_COLUMNS = ("onset_utc", "onset_s", "offset_s", "label", "peak", "snr_db", "redacted", "clip_path", "source")


def check_database(path: str) -> None:
    """OutputError unless `path` is an existing detections database (read-only look: nothing is created)."""
    if not os.path.exists(path):
        raise OutputError(f"{path}: no such detections database")
    if os.path.isdir(path) or os.path.getsize(path) == 0:
        raise OutputError(f"{path}: not a detections database")
    try:
        conn = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise OutputError(f"{path}: not a detections database ({e})") from None
    if not {"events", "runs"} <= tables:
        raise OutputError(f"{path}: an SQLite file, but not a detections database (no events and runs tables)")


def _number(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


@click.command()
@click.argument("database", type=click.Path(dir_okay=True))
@click.option("--label", default=None, help="Only this label (display name, any case).")
@click.option("--since", default=None, metavar="ISO", help="Only events starting at or after this UTC time "
                                                            "(ISO 8601, e.g. 2026-05-01 or 2026-05-01T05:30Z).")
@click.option("--until", default=None, metavar="ISO", help="Only events starting before this UTC time.")
@click.option("--source", default=None, help="Only events of this source (as stored: a file path, device or URL).")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "jsonl"], case_sensitive=False), default="text",
              show_default=True, help="How to print the events (or the summary).")
@click.option("--summary", is_flag=True, help="Per label: count, total duration, first and last onset.")
def detections(database, label, since, until, source, fmt, summary) -> None:
    """List the events stored in DATABASE (`--store` of `tag` and `listen`), oldest first, or a summary per label."""
    with user_errors():
        check_database(database)
        store = DetectionStore(database)
        try:
            if summary:
                _print_summary(store.summary(label, since, until, source), fmt.lower())
            else:
                _print_events(store.events(label, since, until, source), fmt.lower())
        finally:
            store.close()


def _print_events(rows, fmt: str) -> None:
    out = sys.stdout
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, EVENT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    else:
        n = 0
        for row in rows:
            n += 1
            when = row["onset_utc"] or "-"
            clip = row["clip_path"] or ("(clip deleted)" if row["clip_deleted"] else "-")
            flags = "  redacted" if row["redacted"] else ""
            out.write(f"{when}  {row['onset_s']:9.2f}-{row['offset_s']:9.2f} s  {row['label']}  peak "
                      f"{row['peak']:.2f}  snr {_number(row['snr_db'])} dB{flags}  {clip}  [{row['source']}]\n")
        if n == 0:
            click.echo("streamtag: no events match", err=True)


def _print_summary(labels, fmt: str) -> None:
    out = sys.stdout
    rows = [{"label": s.label, "count": s.count, "total_s": round(s.total_s, 3), "first_utc": s.first_utc,
             "last_utc": s.last_utc} for s in labels]
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, ("label", "count", "total_s", "first_utc", "last_utc"), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        for r in rows:
            out.write(f"{r['label']:<32} {r['count']:6d} events  {r['total_s']:10.1f} s  first "
                      f"{r['first_utc'] or '-'}  last {r['last_utc'] or '-'}\n")
        if not rows:
            click.echo("streamtag: no events match", err=True)


__all__ = ["check_database", "detections"]
