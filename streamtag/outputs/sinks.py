"""Ready-made subscribers that write results: text, JSONL, CSV and NPZ. Each records the model."""
from __future__ import annotations

import csv
import json
import os
import stat
import socket
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import numpy as np

from .._version import __version__
from ..models.labels import Labels
from ..pipeline.result import WindowResult


PARTIAL_SUFFIX = ".partial"
STALE_AFTER_S = 24 * 3600  # a temporary file of another machine's run is stale after a day


def _umask() -> int:
    """The process umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _owner_tag() -> str:
    return f"{socket.gethostname().replace('.', '-')}-{os.getpid()}"


def is_stream_path(path: str | os.PathLike) -> bool:
    """Whether `path` names something that is neither a regular file nor a folder (a character device such as
    /dev/null, a FIFO, a socket, or a symlink to one): it is written in place, never replaced."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks: /dev/stdout -> /proc/self/fd/1
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


class AtomicFile:
    """A file written under a temporary name and renamed into place on `commit()`; `discard()` drops it.

    The file gets the mode `open()` would give it under the current umask. The temporary name,
    `.<name>.<host>-<pid>.<random>.partial`, lets a later run recognise it as stale. A path that is not a regular
    file (a device, a FIFO, a socket, or a symlink to one) is written directly instead, and never renamed over.
    """

    def __init__(self, path: str | os.PathLike, binary: bool = False) -> None:
        self.path = Path(path)
        self.tmp: str | None = None
        text = {} if binary else {"newline": "", "encoding": "utf-8"}
        if is_stream_path(self.path):
            self.file: IO = open(self.path, "wb" if binary else "w", **text)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.{_owner_tag()}.", suffix=PARTIAL_SUFFIX,
                                        dir=self.path.parent)
        try:
            os.fchmod(fd, 0o666 & ~_umask())
        except OSError:
            pass  # a file system without modes (e.g. some network shares)
        self.file = os.fdopen(fd, "wb" if binary else "w", **text)

    def __enter__(self) -> IO:
        return self.file

    def __exit__(self, exc_type, exc, tb) -> None:
        """Commit when the block succeeded, else discard."""
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def commit(self) -> None:
        """Flush, close and rename into place; on failure the temporary file is removed and the error raised."""
        try:
            self.file.close()
            if self.tmp is not None:
                os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Drop the temporary file, even when closing it fails (a full disk fails the last flush)."""
        try:
            self.file.close()
        except OSError:
            pass
        finally:
            try:
                if self.tmp is not None:
                    os.unlink(self.tmp)
            except FileNotFoundError:
                pass


def remove_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed streamtag runs left in `folder`: those of this machine whose
    process is gone, and other machines' older than a day. Returns what was removed."""
    removed = []
    try:
        entries = list(Path(folder).glob(f".*{PARTIAL_SUFFIX}"))
    except OSError:
        return removed
    host = socket.gethostname().replace(".", "-")
    for p in entries:
        owner = _partial_owner(p.name)
        if owner is None:
            continue  # not of streamtag's naming
        their_host, pid = owner
        try:
            stale = (not _alive(pid)) if their_host == host else time.time() - p.stat().st_mtime > STALE_AFTER_S
            if stale:
                p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed


def _partial_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) from `.<name>.<host>-<pid>.<random>.partial`, or None for another naming."""
    parts = name[: -len(PARTIAL_SUFFIX)].split(".")
    if len(parts) < 4 or parts[0] != "":
        return None
    host, _, pid = parts[-2].rpartition("-")
    return (host, int(pid)) if host and pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


@dataclass(frozen=True)
class TagFilter:
    """Which tags a window output shows: the top k among the allowed labels, each at or above its
    threshold (its own in `per_class`, else `threshold`)."""

    top_k: int = 5
    threshold: float = 0.0
    allowed: tuple[int, ...] | None = None  # label indices (None: all)
    per_class: tuple[tuple[int, float], ...] = ()  # (label index, threshold)

    def pick(self, scores: np.ndarray) -> list[int]:
        """Label indices to show, best first."""
        idx = np.arange(len(scores)) if self.allowed is None else np.asarray(self.allowed, dtype=int)
        best = idx[np.argsort(-scores[idx], kind="stable")[: self.top_k]]
        own = dict(self.per_class)
        return [int(i) for i in best if scores[i] >= own.get(int(i), self.threshold)]


class TextSink:
    """Readable lines: time span and the top tags with scores (those at or above `threshold`)."""

    def __init__(self, out: IO[str], source: str, tags: TagFilter | None = None) -> None:
        self.out, self.source, self.tags = out, source, tags or TagFilter()
        self._header = False

    def __call__(self, r: WindowResult) -> None:
        if not self._header:
            kind = "" if r.scores is not None else f", embeddings only ({len(r.embedding)}-d; NPZ output holds them)"
            self.out.write(f"# {self.source}  (model {r.model}, window {r.end_s - r.start_s:g} s{kind})\n")
            self._header = True
        shown = self.tags.pick(r.scores) if r.scores is not None else []
        tags = "  ".join(f"{r.labels.names[i]} {r.scores[i]:.2f}" for i in shown)
        lost = f"  [lost {r.lost_samples} samples]" if r.lost_samples else ""
        when = f"  {utc_text(r.start_utc)}" if r.start_utc is not None else ""
        self.out.write(f"{r.start_s:8.2f}-{r.end_s:8.2f} s{when}  {tags}{lost}\n")
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


class JsonlSink:
    """One JSON object per window: file, model, window, times and the top-k tags."""

    def __init__(self, out: IO[str], source: str, tags: TagFilter | None = None) -> None:
        self.out, self.source, self.tags = out, source, tags or TagFilter()

    def __call__(self, r: WindowResult) -> None:
        top = []
        if r.scores is not None:
            for i in self.tags.pick(r.scores):
                top.append({"label": r.labels.names[i], "mid": r.labels.mids[i], "score": round(float(r.scores[i]), 6)})
        rec = {"file": self.source, "model": r.model, "window": r.index, "start_s": round(r.start_s, 6),
               "end_s": round(r.end_s, 6)}
        if r.start_utc is not None:
            rec |= {"start_utc": utc_text(r.start_utc), "end_utc": utc_text(r.end_utc)}
        rec["top"] = top
        if r.level_db is not None:
            rec |= {"level_db": round(r.level_db, 2), "level_dba": round(r.level_dba, 2)}
        if r.lost_samples:
            rec["lost_samples"] = r.lost_samples
        self.out.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self.out.flush()


CSV_COLUMNS = ["file", "model", "window", "start_s", "end_s", "rank", "label", "mid", "score", "lost_samples"]
UTC_COLUMNS = ["start_utc", "end_utc"]  # after end_s, in tables of recordings with a wall-clock start


def utc_text(t: datetime) -> str:
    """A UTC time as ISO 8601 with milliseconds and a Z: 2026-05-01T05:30:12.500Z."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class CsvSink:
    """One row per (window, rank) for the top-k tags; `header=False` to append to an existing table.

    `utc`: the table has start_utc/end_utc columns (empty for windows without a wall-clock start)."""

    def __init__(self, out: IO[str], source: str, tags: TagFilter | None = None, header: bool = True,
                 utc: bool = False) -> None:
        self.writer = csv.writer(out, lineterminator="\n")
        self.out, self.source, self.tags, self.utc = out, source, tags or TagFilter(), utc
        if header:
            self.writer.writerow(CSV_COLUMNS[:5] + UTC_COLUMNS + CSV_COLUMNS[5:] if utc else CSV_COLUMNS)

    def __call__(self, r: WindowResult) -> None:
        if r.scores is None:
            return
        times = [f"{r.start_s:.6f}", f"{r.end_s:.6f}"]
        if self.utc:
            times += ["", ""] if r.start_utc is None else [utc_text(r.start_utc), utc_text(r.end_utc)]
        for rank, i in enumerate(self.tags.pick(r.scores), 1):
            self.writer.writerow([self.source, r.model, r.index, *times, rank,
                                  r.labels.names[i], r.labels.mids[i], f"{float(r.scores[i]):.6f}", r.lost_samples])

    def close(self) -> None:
        self.out.flush()


class NpzSink:
    """All windows' arrays in one .npz: start_s, end_s [K], scores [K,C], embeddings [K,D], labels [C] (C classes).

    Rows are spooled to temporary files as they arrive (memory stays flat however long the
    recording); `close()` assembles the archive under a temporary name and renames it.
    Also stores `model`, `window_s`, `hop_s`, `source` and `streamtag_version`, and `start_utc`/`end_utc`
    (datetime64[us], UTC) when the recording has a wall-clock start; `scores` is left
    out for embedding-only models. Results that carry frame embeddings (`frames=True`) add
    `frame_embeddings` [K,F,Df] and `frame_times` [K,F] (absolute frame starts, s).
    """

    ARRAYS = ("scores", "embeddings", "frame_embeddings", "frame_times")

    def __init__(self, path: str | os.PathLike, labels: Labels, source: str = "", hop_s: float | None = None,
                 extra: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.labels, self.source, self.hop_s = labels, source, hop_s
        self.extra = dict(extra or {})  # more string fields to store (e.g. the head file's sha256)
        self._spool = {k: tempfile.TemporaryFile() for k in self.ARRAYS}
        self._times: list[tuple[float, float]] = []
        self._origins: list[datetime | None] = []
        self._lost: list[int] = []
        self._levels: list[tuple[float, float]] = []  # (dBFS, dBFS A-weighted) when every window has them
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._rows: dict[str, int] = dict.fromkeys(self.ARRAYS, 0)
        self._model = ""

    def __call__(self, r: WindowResult) -> None:
        self._model = r.model
        self._times.append((r.start_s, r.end_s))
        self._origins.append(r.stream_start_utc)
        self._lost.append(r.lost_samples)
        if r.level_db is not None and r.level_dba is not None:
            self._levels.append((r.level_db, r.level_dba))
        for key, row, dtype in (("scores", r.scores, "<f4"), ("embeddings", r.embedding, "<f4"),
                                ("frame_embeddings", r.frames, "<f4"), ("frame_times", r.frame_times, "<f8")):
            if row is not None:
                self._write_row(key, row, dtype)

    def _write_row(self, key: str, row: np.ndarray, dtype: str) -> None:
        row = np.ascontiguousarray(row, dtype=dtype)
        if self._shapes.setdefault(key, row.shape) != row.shape:
            raise ValueError(f"{key} of window {self._rows[key]} has shape {row.shape}, "
                             f"earlier windows {self._shapes[key]}")
        self._spool[key].write(row.tobytes())
        self._rows[key] += 1

    def close(self) -> None:
        k = len(self._times)
        times = np.asarray(self._times, dtype=np.float64).reshape(k, 2)
        small = {
            "start_s": times[:, 0], "end_s": times[:, 1], "labels": np.asarray(self.labels.names),
            "mids": np.asarray(self.labels.mids), "lost_samples": np.asarray(self._lost, dtype=np.int64),
            "model": np.asarray(self._model), "source": np.asarray(self.source),
            "window_s": np.asarray((times[0, 1] - times[0, 0]) if k else np.nan),
            "hop_s": np.asarray(self.hop_s if self.hop_s is not None else np.nan),
            "streamtag_version": np.asarray(__version__),
            **{k: np.asarray(v) for k, v in self.extra.items()},
            **({"level_db": np.asarray([a for a, _ in self._levels]), "level_dba": np.asarray([b for _, b in self._levels])}
               if k and len(self._levels) == k else {}),
            **self._utc_arrays(times),
        }
        try:
            with AtomicFile(self.path, binary=True) as out, \
                    zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, arr in small.items():
                    with zf.open(name + ".npy", "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, arr, allow_pickle=False)
                for key in self.ARRAYS:
                    if self._rows[key] == k and (k or key == "embeddings"):  # every window has it
                        self._copy_spooled(zf, key, k)
        finally:
            for f in self._spool.values():
                f.close()

    def _utc_arrays(self, times: np.ndarray) -> dict[str, np.ndarray]:
        """start_utc/end_utc as datetime64[us] (UTC) when every window has a wall-clock start, else nothing."""
        if not self._origins or any(t is None for t in self._origins):
            return {}
        origin = np.array([np.datetime64(t.astimezone(timezone.utc).replace(tzinfo=None), "us")
                           for t in self._origins])
        offsets = [np.round(times[:, j] * 1e6).astype(np.int64).astype("timedelta64[us]") for j in (0, 1)]
        return {"start_utc": origin + offsets[0], "end_utc": origin + offsets[1]}

    def _copy_spooled(self, zf: zipfile.ZipFile, key: str, k: int) -> None:
        spool = self._spool[key]
        spool.seek(0)
        descr = "<f8" if key == "frame_times" else "<f4"
        header = {"descr": descr, "fortran_order": False, "shape": (k, *self._shapes.get(key, (0,)))}
        with zf.open(key + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_2_0(f, header)
            for chunk in iter(lambda: spool.read(1 << 20), b""):
                f.write(chunk)


def open_text(path: str | os.PathLike) -> tuple[IO[str], AtomicFile | None]:
    """A text stream for '-' (stdout) or an atomically written file."""
    if str(path) == "-":
        return sys.stdout, None
    f = AtomicFile(path)
    return f.file, f


__all__ = ["AtomicFile", "remove_stale_partials", "CSV_COLUMNS", "CsvSink", "JsonlSink", "NpzSink", "TagFilter", "TextSink", "open_text"]
