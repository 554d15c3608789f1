"""An on-disk embeddings index: every window's embedding in a usearch HNSW graph (cosine), its metadata
(file, stream seconds, UTC, level) in SQLite, one backbone and window per index.

Layout of an index folder: `meta.sqlite` (tables info, files, windows; a window's id is its vector's key)
and `vectors.usearch`. Adding is incremental and crash-safe: the vectors are saved before the metadata
commits, so after a kill the vectors hold at most some keys the metadata lacks, which `open` removes; a
file is marked done only with its last window, so an unfinished one is dropped and indexed again.
"""
from __future__ import annotations

import math
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from ..audio.inputs import InputOptions, open_audio
from ..errors import ConfigError, StreamtagError
from ..outputs.sinks import utc_text

if TYPE_CHECKING:
    from ..pipeline.tagger import Tagger

SCHEMA_VERSION = 1
META = "meta.sqlite"
VECTORS = "vectors.usearch"
CONNECTIVITY = 16  # HNSW graph degree: see docs/search.md for the measurement behind these
EXPANSION_ADD = 128
EXPANSION_SEARCH = 256  # recall@100 0.996, p95 15 ms at 1 million 384-d windows (docs/search.md)
CHECKPOINT_WINDOWS = 20_000  # a long file is committed at least this often
BATCH = 512  # windows added to the graph at a time


class IndexFolderError(StreamtagError):
    """An index folder that cannot be used as asked (missing, damaged, or of another format)."""


class IndexMismatch(IndexFolderError):
    """The one-line refusal of a second backbone, weights or window in one index."""


def _usearch():
    try:
        from usearch.index import Index as UIndex
    except ImportError:
        raise ConfigError("the embeddings index needs the [search] extra: pip install 'streamtag[search]'") from None
    return UIndex


@dataclass(frozen=True)
class IndexInfo:
    """What every window of an index shares: the backbone, its weights, the window rule and the vector size."""

    model: str
    weights_sha256: str
    window_s: float
    hop_s: float
    dim: int
    rate: int

    def __post_init__(self) -> None:
        if self.dim < 1 or self.window_s <= 0 or self.hop_s <= 0 or self.rate < 1:
            raise ConfigError(f"an index needs a positive dimension, window, hop and rate, got {self}")

    def describe(self) -> str:
        return f"{self.model} ({self.weights_sha256[:12]}…) {self.window_s:g} s windows, {self.hop_s:g} s hop"

    def check(self, other: "IndexInfo", folder: str) -> None:
        """IndexMismatch (one line) unless `other` uses the same backbone, weights and windows."""
        same = (self.model == other.model and self.weights_sha256 == other.weights_sha256
                and math.isclose(self.window_s, other.window_s) and math.isclose(self.hop_s, other.hop_s)
                and self.dim == other.dim)
        if not same:
            raise IndexMismatch(f"{folder} indexes {self.describe()}; this run uses {other.describe()}: "
                                f"use another --index folder (one index holds one backbone and window)")


@dataclass(frozen=True)
class WindowRow:
    """One indexed window: its id (the vector's key), file, position and level."""

    id: int
    file: str
    index: int
    start_s: float
    end_s: float
    start_utc: str | None
    level_db: float


@dataclass(frozen=True)
class AddReport:
    """What `Index.add_files` did: files indexed now, skipped as already done, and windows added."""

    added: tuple[str, ...]
    skipped: tuple[str, ...]
    windows: int


def tagger_for(info: IndexInfo, **options) -> "Tagger":
    """A Tagger that embeds like the index's windows (its backbone, window and hop)."""
    from ..pipeline.tagger import Tagger
    return Tagger(info.model, window=info.window_s, hop=info.hop_s, **options)


def tagger_info(tagger: "Tagger") -> IndexInfo:
    """The IndexInfo of the windows `tagger` produces."""
    from ..outputs.monitor import model_weights_sha256  # the same digest the detections database records
    sha = model_weights_sha256(tagger.model) or "unknown"
    return IndexInfo(tagger.model_name, sha, tagger.window.window_s, tagger.window.hop_s,
                     int(tagger.spec.embedding_dim), int(tagger.sample_rate))


_Store = TypeVar("_Store", bound="IndexStore")


class IndexStore:
    """An embeddings index folder: `open(dir)` an existing one, `create(dir, info)` to add to (`Index` adds search)."""

    def __init__(self, folder: Path, db: sqlite3.Connection, info: IndexInfo) -> None:
        self.folder, self.db, self.info = folder, db, info
        UIndex = _usearch()
        self.vectors = UIndex(ndim=info.dim, metric="cos", dtype="f32", connectivity=CONNECTIVITY,
                              expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
        path = folder / VECTORS
        if path.exists():
            try:
                self.vectors.load(str(path))
            except Exception as e:  # noqa: BLE001 - usearch raises RuntimeError/ValueError for a bad file
                raise IndexFolderError(f"{path}: not a readable vector file ({e})") from None
        self._reconcile()

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls: "type[_Store]", folder: str | os.PathLike) -> "_Store":
        """An existing index; IndexFolderError when `folder` holds none."""
        folder = Path(folder)
        if not (folder / META).is_file():
            raise IndexFolderError(f"{folder}: no streamtag index there (build one with `streamtag index DATA --index "
                              f"{folder}`)")
        db = cls._connect(folder)
        return cls(folder, db, cls._read_info(db, folder))

    @classmethod
    def create(cls: "type[_Store]", folder: str | os.PathLike, info: IndexInfo) -> "_Store":
        """The index in `folder` (made if new); IndexMismatch when it holds another backbone or window."""
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise IndexFolderError(f"{folder}: not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        db = cls._connect(folder)
        if db.execute("select count(*) from info").fetchone()[0] == 0:
            with db:
                db.executemany("insert into info values (?, ?)", [
                    ("schema", str(SCHEMA_VERSION)), ("model", info.model), ("weights_sha256", info.weights_sha256),
                    ("window_s", repr(info.window_s)), ("hop_s", repr(info.hop_s)), ("dim", str(info.dim)),
                    ("rate", str(info.rate))])
        have = cls._read_info(db, folder)
        have.check(info, str(folder))
        return cls(folder, db, have)

    @staticmethod
    def _connect(folder: Path) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(folder / META, isolation_level="DEFERRED")
            db.executescript("""
                create table if not exists info (key text primary key, value text not null);
                create table if not exists files (id integer primary key, path text unique not null,
                    size integer, mtime_ns integer, start_utc text, done integer not null default 0,
                    windows integer not null default 0);
                create table if not exists windows (id integer primary key, file_id integer not null,
                    idx integer not null, start_s real not null, end_s real not null, start_utc text,
                    level_db real, unique (file_id, idx));
            """)
        except sqlite3.DatabaseError as e:
            raise IndexFolderError(f"{folder / META}: not a readable index database ({e})") from None
        return db

    @staticmethod
    def _read_info(db: sqlite3.Connection, folder: Path) -> IndexInfo:
        kv = dict(db.execute("select key, value from info").fetchall())
        try:
            if int(kv["schema"]) != SCHEMA_VERSION:
                raise IndexFolderError(f"{folder}: index format {kv['schema']}, this streamtag reads {SCHEMA_VERSION}")
            return IndexInfo(kv["model"], kv["weights_sha256"], float(kv["window_s"]), float(kv["hop_s"]),
                             int(kv["dim"]), int(kv["rate"]))
        except (KeyError, ValueError):
            raise IndexFolderError(f"{folder}: the index's description is incomplete") from None

    def _reconcile(self) -> None:
        """After a kill: drop vectors whose metadata never committed, and unfinished files entirely."""
        unfinished = [r[0] for r in self.db.execute("select id from files where done = 0")]
        if unfinished:
            marks = ",".join("?" * len(unfinished))
            with self.db:
                self.db.execute(f"delete from windows where file_id in ({marks})", unfinished)
                self.db.execute(f"delete from files where id in ({marks})", unfinished)
        known = self.db.execute("select count(*) from windows").fetchone()[0]
        if len(self.vectors) != known:
            keys = np.asarray(self.vectors.keys, dtype=np.int64)
            ids = np.array([r[0] for r in self.db.execute("select id from windows")], dtype=np.int64)
            orphans = np.setdiff1d(keys, ids)
            if len(orphans):
                self.vectors.remove(orphans.astype(np.uint64))
            if len(self.vectors) != known:
                raise IndexFolderError(f"{self.folder}: {known} windows in the metadata but {len(self.vectors)} "
                                  "vectors; the index is damaged: build it again in a new folder")
            self._save_vectors()

    def close(self) -> None:
        self.db.close()

    def __enter__(self: "_Store") -> "_Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.vectors)

    # -- adding ------------------------------------------------------------------------
    def _save_vectors(self) -> None:
        tmp = self.folder / (VECTORS + ".tmp")
        self.vectors.save(str(tmp))
        os.replace(tmp, self.folder / VECTORS)

    def _checkpoint(self) -> None:
        self._save_vectors()  # vectors first: a kill before the commit leaves only orphan keys
        self.db.commit()

    def files(self, done_only: bool = True) -> list[str]:
        """Paths of the indexed files."""
        q = "select path from files" + (" where done = 1" if done_only else "") + " order by id"
        return [r[0] for r in self.db.execute(q)]

    def add_files(self, paths: Sequence[str], tagger: "Tagger", options: InputOptions = InputOptions(),
                  progress: Callable[[str, int], None] | None = None) -> AddReport:
        """Embed and add every window of each file not yet done (a changed file is indexed again)."""
        self.info.check(tagger_info(tagger), str(self.folder))
        added, skipped, total = [], [], 0
        for path in paths:
            key, size, mtime = self._file_key(path)
            row = self.db.execute("select id, size, mtime_ns, done from files where path = ?", (key,)).fetchone()
            if row is not None and row[3] and (row[1], row[2]) == (size, mtime):
                skipped.append(path)
                continue
            if row is not None:
                self._remove_file(row[0])
            n = self._add_file(path, key, size, mtime, tagger, options)
            added.append(path)
            total += n
            if progress is not None:
                progress(path, n)
        return AddReport(tuple(added), tuple(skipped), total)

    @staticmethod
    def _file_key(path: str) -> tuple[str, int | None, int | None]:
        if "://" in path:
            return path, None, None
        p = os.path.abspath(path)
        try:
            st = os.stat(p)
        except OSError:
            return p, None, None  # opening it will say what is wrong
        return p, st.st_size, st.st_mtime_ns

    def _remove_file(self, file_id: int) -> None:
        ids = np.array([r[0] for r in self.db.execute("select id from windows where file_id = ?", (file_id,))],
                       dtype=np.uint64)
        if len(ids):
            self.vectors.remove(ids)
        self.db.execute("delete from windows where file_id = ?", (file_id,))
        self.db.execute("delete from files where id = ?", (file_id,))
        self._checkpoint()

    def _add_file(self, path: str, key: str, size: int | None, mtime: int | None, tagger: "Tagger",
                  options: InputOptions) -> int:
        source = open_audio(path, options)
        cur = self.db.execute("insert into files (path, size, mtime_ns, start_utc) values (?, ?, ?, ?)",
                              (key, size, mtime, utc_text(source.start_utc) if source.start_utc else None))
        file_id = cur.lastrowid
        self.db.commit()
        rows, vecs, count, since = [], [], 0, 0
        for r in tagger.iter_source(source):  # each window's level is the pipeline's (dBFS RMS)
            rows.append((file_id, r.index, r.start_s, r.end_s, utc_text(r.start_utc) if r.start_utc else None,
                         r.level_db))
            vecs.append(r.embedding)
            if len(rows) >= BATCH:
                count += self._add_rows(rows, vecs)
                since += len(rows)
                rows, vecs = [], []
                if since >= CHECKPOINT_WINDOWS:
                    self._checkpoint()
                    since = 0
        if rows:
            count += self._add_rows(rows, vecs)
        self.db.execute("update files set done = 1, windows = ? where id = ?", (count, file_id))
        self._checkpoint()
        return count

    def _add_rows(self, rows: list[tuple], vecs: list[np.ndarray]) -> int:
        first = self.db.execute("select coalesce(max(id), 0) + 1 from windows").fetchone()[0]
        ids = np.arange(first, first + len(rows), dtype=np.uint64)
        self.db.executemany("insert into windows (id, file_id, idx, start_s, end_s, start_utc, level_db) "
                            "values (?, ?, ?, ?, ?, ?, ?)", [(int(i), *r) for i, r in zip(ids, rows)])
        self.vectors.add(ids, np.stack(vecs).astype(np.float32), threads=2)
        return len(rows)

    # -- reading -----------------------------------------------------------------------
    _ROW = ("select w.id, f.path, w.idx, w.start_s, w.end_s, w.start_utc, w.level_db from windows w "
            "join files f on f.id = w.file_id")

    def windows(self, ids: Iterable[int]) -> list[WindowRow]:
        """The metadata of these window ids, in the order given (unknown ids raise IndexFolderError)."""
        ids = [int(i) for i in ids]
        found: dict[int, WindowRow] = {}
        for chunk in range(0, len(ids), 900):
            part = ids[chunk:chunk + 900]
            q = f"{self._ROW} where w.id in ({','.join('?' * len(part))})"
            found.update({r[0]: WindowRow(*r) for r in self.db.execute(q, part)})
        missing = [i for i in ids if i not in found]
        if missing:
            raise IndexFolderError(f"{self.folder}: no window {missing[0]} in this index")
        return [found[i] for i in ids]

    def file_windows(self, path: str, start_s: float | None = None, end_s: float | None = None) -> list[WindowRow]:
        """The windows of an indexed file, in order; with a range, those inside it (or, for a range shorter than
        a window, the one overlapping it most)."""
        key = self._file_key(path)[0]
        rows = [WindowRow(*r) for r in self.db.execute(f"{self._ROW} where f.path = ? and f.done = 1 order by "
                                                       "w.idx", (key,))]
        if start_s is None or not rows:
            return rows
        end_s = math.inf if end_s is None else end_s
        inside = [w for w in rows if w.start_s >= start_s - 1e-6 and w.end_s <= end_s + 1e-6]
        if inside:
            return inside
        overlap = [min(w.end_s, end_s) - max(w.start_s, start_s) for w in rows]
        best = int(np.argmax(overlap))
        return [rows[best]] if overlap[best] > 0 else []

    def file_ids(self, paths: Iterable[str]) -> set[int]:
        """Window ids of these files."""
        out: set[int] = set()
        for p in paths:
            out.update(r[0] for r in self.db.execute(
                "select w.id from windows w join files f on f.id = w.file_id where f.path = ?",
                (self._file_key(p)[0],)))
        return out

    def vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        """[N, D] float32 unit embeddings of these window ids."""
        if len(ids) == 0:
            return np.zeros((0, self.info.dim), np.float32)
        v = np.asarray(self.vectors.get(np.asarray(ids, dtype=np.uint64)), dtype=np.float32).reshape(len(ids), -1)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def all_ids(self, batch: int = 4096) -> Iterator[np.ndarray]:
        """Every window id, in batches."""
        last = 0
        while True:
            ids = [r[0] for r in self.db.execute("select id from windows where id > ? order by id limit ?",
                                                 (last, batch))]
            if not ids:
                return
            last = ids[-1]
            yield np.asarray(ids, dtype=np.int64)

    def nearest(self, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, cosine similarities) of the `count` nearest windows to one vector (HNSW, approximate)."""
        count = min(int(count), len(self))
        if count <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        self.vectors.expansion_search = max(EXPANSION_SEARCH, count)
        m = self.vectors.search(np.asarray(query, np.float32), count)
        return np.asarray(m.keys, dtype=np.int64), 1.0 - np.asarray(m.distances, dtype=np.float32)


__all__ = ["AddReport", "IndexStore", "IndexFolderError", "IndexInfo", "IndexMismatch", "WindowRow", "tagger_for",
           "tagger_info"]
