"""Audio clips of events: a small bounded buffer fed by the stream's audio tap, and a writer of FLAC clips
(event plus padding) whose folder is kept under a size bound, oldest clips first."""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from ..errors import ConfigError
from .detection import Detection
from .sinks import utc_text

DEFAULT_BUFFER_S = 300.0  # audio kept for clips: the longest clip, plus how far the source runs ahead


class ClipBuffer:
    """The latest `seconds` of the stream's audio (float32 mono at the stream's rate), by absolute sample.

    Fed from the source thread (`write`), read from the dispatcher's (`read`); thread-safe.
    """

    def __init__(self, seconds: float = DEFAULT_BUFFER_S) -> None:
        if not 1.0 <= seconds <= 24 * 3600:
            raise ConfigError(f"the clip buffer must hold 1 s to 24 h, got {seconds} s")
        self.seconds = seconds
        self.rate: int | None = None
        self._data = np.zeros(0, np.float32)
        self._written = 0
        self._lock = threading.Lock()

    @property
    def written(self) -> int:
        return self._written

    def write(self, start: int, samples: np.ndarray, rate: int) -> None:
        """Append the stream's samples [start, start+len) (a jump forward is filled with zeros)."""
        with self._lock:
            if self.rate is None:
                self.rate = int(rate)
                self._data = np.zeros(int(self.seconds * rate), np.float32)
            if start > self._written:
                self._store(np.zeros(start - self._written, np.float32))
            elif start < self._written:
                samples = samples[self._written - start:]
            self._store(np.asarray(samples, np.float32).reshape(-1))

    def _store(self, x: np.ndarray) -> None:
        cap = len(self._data)
        if len(x) > cap:
            self._written += len(x) - cap
            x = x[-cap:]
        a = self._written % cap
        first = min(len(x), cap - a)
        self._data[a:a + first] = x[:first]
        self._data[:len(x) - first] = x[first:]
        self._written += len(x)

    def read(self, start: int, end: int) -> tuple[np.ndarray, int]:
        """Samples [start, end) clipped to what is held: (samples, absolute index of the first one)."""
        with self._lock:
            cap = len(self._data)
            lo, hi = max(start, self._written - cap, 0), min(end, self._written)
            if cap == 0 or hi <= lo:
                return np.zeros(0, np.float32), max(start, 0)
            idx = np.arange(lo, hi) % cap
            return self._data[idx].copy(), lo


def clip_name(d: Detection) -> str:
    """A clip's file name: UTC onset and label (`20260501T053012.500Z_Dog.flac`), or, without a wall clock, the
    source's name and the onset in stream seconds."""
    label = re.sub(r"[^A-Za-z0-9]+", "_", d.label).strip("_") or "event"
    if d.onset_utc is not None:
        when = utc_text(d.onset_utc).replace("-", "").replace(":", "")
    else:
        stem = re.sub(r"[^A-Za-z0-9]+", "_", Path(d.source).stem).strip("_") or "stream"
        when = f"{stem}_{d.onset_s:010.3f}s"
    return f"{when}_{label}.flac"


@dataclass
class _Pending:
    detection: Detection
    start: int  # samples, clip range at the buffer's rate
    end: int
    done: Callable[[Detection, str], None] | None


class ClipWriter:
    """Writes each event's audio, `padding_s` before and after, as 16-bit FLAC at the stream's rate.

    A clip is written once the windows covering its end are decided (`advance`), so the privacy gate has
    judged all of it; private parts are silenced. `max_bytes` bounds the folder's clips (oldest deleted
    first, `on_delete(path)` told). The clip audio comes from the stream (`on_audio`, the pipeline's tap).
    """

    def __init__(self, folder: str | os.PathLike, padding_s: float = 1.0, max_bytes: int | None = None,
                 buffer_s: float = DEFAULT_BUFFER_S) -> None:
        if not 0.0 <= padding_s <= 60.0:
            raise ConfigError(f"clip padding must be within 0..60 s, got {padding_s}")
        if max_bytes is not None and max_bytes <= 0:
            raise ConfigError(f"the clips' size bound must be positive, got {max_bytes} bytes")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.padding_s, self.max_bytes = padding_s, max_bytes
        self.buffer = ClipBuffer(buffer_s)
        self.on_delete: Callable[[str], None] | None = None
        self.privacy = None  # a PrivacyGate, set by the Monitor
        self._pending: list[_Pending] = []
        self._clips = sorted((p for p in self.folder.glob("*.flac")), key=lambda p: (p.stat().st_mtime, p.name))
        self._bytes = sum(p.stat().st_size for p in self._clips)
        self.written = 0
        self.truncated = 0  # clips shorter than asked: their start had left the buffer
        self.deleted = 0

    def on_audio(self, start: int, samples: np.ndarray, rate: int) -> None:
        """The pipeline's audio tap: keep the stream's latest audio."""
        self.buffer.write(start, samples, rate)

    def request(self, d: Detection, done: Callable[[Detection, str], None] | None = None) -> None:
        """Ask for event `d`'s clip; `done(d, path)` is called once it is written."""
        rate = self.buffer.rate or 1
        start = max(0, int(round((d.onset_s - self.padding_s) * rate)))
        end = int(round((d.offset_s + self.padding_s) * rate))
        self._pending.append(_Pending(d, start, end, done))

    def advance(self, decided_s: float) -> None:
        """Windows starting before `decided_s` are decided: write the clips that end by then."""
        rate = self.buffer.rate or 1
        ready = [p for p in self._pending if p.end <= decided_s * rate]
        for p in ready:
            self._pending.remove(p)
            self._write(p)

    def finish(self) -> None:
        """End of stream: write every clip still waiting (cut at the stream's end)."""
        for p in self._pending:
            self._write(p)
        self._pending = []

    def _write(self, p: _Pending) -> None:
        rate = self.buffer.rate
        if rate is None:
            return
        audio, first = self.buffer.read(p.start, p.end)
        if first > p.start:
            self.truncated += 1
        if self.privacy is not None:
            audio, _ = self.privacy.silence(audio, first / rate, rate)
        path = self.folder / clip_name(p.detection)
        n = 1
        while path.exists():
            path = path.with_name(f"{path.stem.rsplit('~', 1)[0]}~{n}.flac")
            n += 1
        tmp = path.with_name(f".{path.name}.partial")
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
        os.replace(tmp, path)
        self.written += 1
        self._clips.append(path)
        self._bytes += path.stat().st_size
        if p.done is not None:
            p.done(p.detection, str(path))
        self._bound()

    def _bound(self) -> None:
        """Delete the oldest clips until the folder's clips fit `max_bytes` (the newest is always kept)."""
        if self.max_bytes is None:
            return
        while self._bytes > self.max_bytes and len(self._clips) > 1:
            old = self._clips.pop(0)
            try:
                size = old.stat().st_size
                old.unlink()
            except FileNotFoundError:
                size = 0
            self._bytes -= size
            self.deleted += 1
            if self.on_delete is not None:
                self.on_delete(str(old))
