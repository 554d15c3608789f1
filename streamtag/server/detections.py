"""Reading the sources' detections databases for the API (read-only: the sources' Monitors write them), and finding
an event's clip inside its source's clips folder, nothing outside it."""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..outputs.store import EVENT_COLUMNS, parse_time
from .config import SourceConfig

MAX_LIMIT = 10000
SHOWN = tuple(c for c in EVENT_COLUMNS if c != "clip_path")  # a server path is not shown; its URL is


@dataclass(frozen=True)
class Query:
    """What `/api/detections` asks: label, onset times (ISO 8601, UTC when naive), source and how many."""

    label: str | None = None
    since: str | None = None
    until: str | None = None
    source: str | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ConfigError(f"limit must be 1 to {MAX_LIMIT}")
        for t in (self.since, self.until):
            if t is not None:
                parse_time(t)

    @classmethod
    def from_params(cls, q) -> Query:
        limit = q.get("limit", "100")
        if not limit.isdigit():
            raise ConfigError("limit is a whole number")
        return cls(q.get("label") or None, q.get("since") or None, q.get("until") or None, q.get("source") or None,
                   int(limit))


class Database:
    """One detections database (read-only) and the sources that write it, with their clips folders."""

    def __init__(self, path: str) -> None:
        self.path = Path(path).resolve()
        self.sources: dict[str, Path | None] = {}  # source name -> its clips folder (resolved) or None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None:
            if not self.path.is_file():
                return None  # no event stored yet
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                         timeout=10.0)
            self._conn.row_factory = sqlite3.Row
        return self._conn

    def events(self, q: Query) -> list[dict]:
        """The `q.limit` latest matching events of this database's sources, oldest first."""
        names = [s for s in self.sources if q.source in (None, s)]
        if not names:
            return []
        clauses = [f"source IN ({', '.join('?' * len(names))})"]
        args: list[object] = list(names)
        if q.label is not None:
            clauses.append("label = ? COLLATE NOCASE")
            args.append(q.label)
        if q.since is not None:
            clauses.append("onset_utc >= ?")
            args.append(parse_time(q.since))
        if q.until is not None:
            clauses.append("onset_utc < ?")
            args.append(parse_time(q.until))
        with self._lock:
            conn = self._connection()
            if conn is None:
                return []
            rows = conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE {' AND '.join(clauses)} "
                                "ORDER BY onset_utc DESC, run_id DESC, onset_s DESC, id DESC LIMIT ?",
                                [*args, q.limit]).fetchall()
        out = []
        for row in reversed(rows):
            d = {k: row[k] for k in SHOWN}
            d["redacted"], d["clip_deleted"] = bool(d["redacted"]), bool(d["clip_deleted"])
            d["clip_url"] = (f"/api/clips/{row['id']}?source={row['source']}"
                             if self.clip_file(row["source"], row["clip_path"]) is not None else None)
            out.append(d)
        return out

    def clip(self, event_id: int, source: str | None) -> Path | None:
        """The FLAC file of event `event_id` (of `source`, when given), if it lies in its source's clips folder."""
        with self._lock:
            conn = self._connection()
            if conn is None:
                return None
            row = conn.execute("SELECT source, clip_path FROM events WHERE id = ?", (event_id,)).fetchone()
        if row is None or (source is not None and row["source"] != source):
            return None
        return self.clip_file(row["source"], row["clip_path"])

    def clip_file(self, source: str, clip_path: str | None) -> Path | None:
        folder = self.sources.get(source)
        if folder is None or not clip_path:
            return None
        path = Path(clip_path).resolve()  # symbolic links followed: the file itself must be in the folder
        return path if path.suffix == ".flac" and path.is_relative_to(folder) and path.is_file() else None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class Detections:
    """Every detections database the sources configure (`store`), for `/api/detections` and `/api/clips/<id>`."""

    def __init__(self, sources: tuple[SourceConfig, ...] | list[SourceConfig]) -> None:
        self.databases: dict[Path, Database] = {}
        self.of_source: dict[str, Database] = {}
        for s in sources:
            if s.monitor.store is None:
                continue
            db = self.databases.setdefault(Path(s.monitor.store).resolve(), Database(s.monitor.store))
            db.sources[s.name] = None if s.monitor.clips is None else Path(s.monitor.clips).resolve()
            self.of_source[s.name] = db

    @property
    def configured(self) -> bool:
        return bool(self.databases)

    def events(self, q: Query) -> list[dict]:
        """The `q.limit` latest matching events over every database, oldest first."""
        if q.source is not None and q.source not in self.of_source:
            raise ConfigError(f"no source {q.source!r} stores its events")
        found: list[dict] = []
        for db in self.databases.values():
            found += db.events(q)
        found.sort(key=lambda d: (d["onset_utc"] or "", d["onset_s"]))
        return found[-q.limit:]

    def clip(self, event_id: int, source: str | None) -> Path | None:
        """An event's clip: in `source`'s database, or in the only one when no source is named."""
        if source is not None:
            db = self.of_source.get(source)
        else:
            db = next(iter(self.databases.values())) if len(self.databases) == 1 else None
        return None if db is None else db.clip(event_id, source)

    def close(self) -> None:
        for db in self.databases.values():
            db.close()
