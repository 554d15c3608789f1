"""A detections database: one SQLite row per event and one per run, committed as events close (WAL).

Each event is its own small transaction, so a process killed at any moment (kill -9) loses at most the
event being written. The schema is versioned (`PRAGMA user_version`) and migrated forward on open.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import OutputError
from .detection import Detection

SCHEMA_VERSION = 2

# Each entry takes the database from version i to i + 1 (index i). Never edit a released step: add one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 0 -> 1: events and runs
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            settings_id TEXT NOT NULL,
            settings TEXT NOT NULL,
            source TEXT NOT NULL,
            model TEXT NOT NULL,
            weights_sha256 TEXT,
            started_utc TEXT NOT NULL,
            ended_utc TEXT,
            windows INTEGER NOT NULL DEFAULT 0,
            lost_samples INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            run_id INTEGER REFERENCES runs(id),
            source TEXT NOT NULL,
            model TEXT NOT NULL,
            weights_sha256 TEXT,
            label TEXT NOT NULL,
            mid TEXT NOT NULL,
            onset_s REAL NOT NULL,
            offset_s REAL NOT NULL,
            onset_utc TEXT,
            offset_utc TEXT,
            peak REAL NOT NULL,
            mean REAL NOT NULL,
            clip_path TEXT,
            settings_id TEXT)""",
        "CREATE INDEX events_label ON events(label)",
        "CREATE INDEX events_onset_utc ON events(onset_utc)",
    ),
    (  # 1 -> 2: sound levels, the privacy flag, clip deletions and alert drops
        "ALTER TABLE events ADD COLUMN level_db REAL",
        "ALTER TABLE events ADD COLUMN level_dba REAL",
        "ALTER TABLE events ADD COLUMN noise_floor_db REAL",
        "ALTER TABLE events ADD COLUMN snr_db REAL",
        "ALTER TABLE events ADD COLUMN redacted INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE events ADD COLUMN clip_deleted INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN dropped_alerts INTEGER NOT NULL DEFAULT 0",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION

EVENT_COLUMNS = ("id", "run_id", "source", "model", "weights_sha256", "label", "mid", "onset_s", "offset_s",
                 "onset_utc", "offset_utc", "peak", "mean", "level_db", "level_dba", "noise_floor_db", "snr_db",
                 "clip_path", "redacted", "clip_deleted", "settings_id")


def iso_utc(t: datetime | None) -> str | None:
    """A UTC time as sortable ISO 8601 text with microseconds and a Z (None stays None)."""
    if t is None:
        return None
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> str:
    """An ISO 8601 time given by a user (`2026-05-01`, `2026-05-01T05:30`, with an offset or Z; naive = UTC) as
    the database's UTC text; ConfigError-like OutputError when unreadable."""
    from ..errors import ConfigError
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"not an ISO 8601 time: {text!r} (e.g. 2026-05-01T05:30:00Z)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return iso_utc(t) or ""


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the database to SCHEMA_VERSION, each step in its own transaction; returns the version found."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise OutputError(f"{path}: detections database schema {found} is newer than this streamtag's "
                          f"({SCHEMA_VERSION}); upgrade streamtag")
    for version in range(found, SCHEMA_VERSION):
        with conn:
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
    return found


@dataclass(frozen=True)
class LabelSummary:
    """One label's events in a query: how many, their total duration, the first and last onsets."""

    label: str
    count: int
    total_s: float
    first_utc: str | None
    last_utc: str | None


class DetectionStore:
    """The detections database at `path` (created, or migrated to the current schema). Thread-safe."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False,
                                         isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process (WAL)
            self.found_version = migrate(self._conn, str(self.path))
        except sqlite3.DatabaseError as e:
            raise OutputError(f"{self.path}: cannot open the detections database: {e}") from None
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self.run_id: int | None = None

    # -- writing -------------------------------------------------------------------------
    def _write(self, sql: str, args: Sequence[object]) -> int:
        with self._lock, self._conn:
            cur = self._conn.execute(sql, tuple(args))
            return int(cur.lastrowid or 0)

    def begin_run(self, settings: dict, source: str, model: str, weights_sha256: str | None = None,
                  started: datetime | None = None) -> int:
        """Record a run's start; later events belong to it. Returns its id."""
        text = json.dumps(settings, sort_keys=True, default=str)
        settings_id = _settings_id(text)
        self.settings_id = settings_id
        self.run_id = self._write(
            "INSERT INTO runs (settings_id, settings, source, model, weights_sha256, started_utc) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (settings_id, text, source, model, weights_sha256, iso_utc(started or datetime.now(timezone.utc))))
        return self.run_id

    def add(self, d: Detection) -> int:
        """Insert one event (its own transaction); returns its row id."""
        return self._write(
            "INSERT INTO events (run_id, source, model, weights_sha256, label, mid, onset_s, offset_s, onset_utc, "
            "offset_utc, peak, mean, level_db, level_dba, noise_floor_db, snr_db, clip_path, redacted, settings_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.run_id, d.source, d.model, d.weights_sha256, d.label, d.mid, d.onset_s, d.offset_s,
             iso_utc(d.onset_utc), iso_utc(d.offset_utc), d.peak, d.mean, d.level_db, d.level_dba,
             d.noise_floor_db, d.snr_db, d.clip_path, int(d.redacted), getattr(self, "settings_id", None)))

    def set_clip(self, event_id: int, clip_path: str) -> None:
        """Record the clip written for an event."""
        self._write("UPDATE events SET clip_path = ? WHERE id = ?", (clip_path, event_id))

    def clip_deleted(self, clip_path: str) -> None:
        """A clip was removed to bound the disk: its rows keep the event, without the clip."""
        self._write("UPDATE events SET clip_path = NULL, clip_deleted = 1 WHERE clip_path = ?", (clip_path,))

    def end_run(self, windows: int = 0, lost_samples: int = 0, dropped_alerts: int = 0,
                ended: datetime | None = None) -> None:
        """Record the current run's end and totals."""
        if self.run_id is None:
            return
        self._write("UPDATE runs SET ended_utc = ?, windows = ?, lost_samples = ?, dropped_alerts = ? WHERE id = ?",
                    (iso_utc(ended or datetime.now(timezone.utc)), windows, lost_samples, dropped_alerts,
                     self.run_id))

    def add_dropped_alerts(self, n: int) -> None:
        """Alerts dropped after the current run's end was recorded (left in a queue at close) join its count."""
        if self.run_id is not None and n:
            self._write("UPDATE runs SET dropped_alerts = dropped_alerts + ? WHERE id = ?", (n, self.run_id))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- reading -------------------------------------------------------------------------
    def events(self, label: str | None = None, since: str | None = None, until: str | None = None,
               source: str | None = None) -> Iterator[dict]:
        """Events as dicts (EVENT_COLUMNS), oldest first; `since`/`until` are ISO 8601 times (UTC when naive)
        on the onset; label and source match exactly (label without regard to case)."""
        where, args = _filters(label, since, until, source)
        with self._lock:
            rows = self._conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events{where} "
                                      "ORDER BY onset_utc, run_id, onset_s, id", args).fetchall()
        return (dict(row) for row in rows)

    def summary(self, label: str | None = None, since: str | None = None, until: str | None = None,
                source: str | None = None) -> list[LabelSummary]:
        """Per label: count, total duration and first/last onset (UTC), most frequent first."""
        where, args = _filters(label, since, until, source)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT label, COUNT(*), SUM(offset_s - onset_s), MIN(onset_utc), MAX(onset_utc) FROM events{where} "
                "GROUP BY label ORDER BY COUNT(*) DESC, label", args).fetchall()
        return [LabelSummary(r[0], int(r[1]), float(r[2] or 0.0), r[3], r[4]) for r in rows]

    def runs(self) -> list[dict]:
        """Every run, oldest first."""
        with self._lock:
            return [dict(r) for r in self._conn.execute("SELECT * FROM runs ORDER BY id").fetchall()]


def _filters(label: str | None, since: str | None, until: str | None, source: str | None) -> tuple[str, list]:
    clauses, args = [], []
    if label is not None:
        clauses.append("label = ? COLLATE NOCASE")
        args.append(label)
    if since is not None:
        clauses.append("onset_utc >= ?")
        args.append(parse_time(since))
    if until is not None:
        clauses.append("onset_utc < ?")
        args.append(parse_time(until))
    if source is not None:
        clauses.append("source = ?")
        args.append(source)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _settings_id(text: str) -> str:
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()[:16]
