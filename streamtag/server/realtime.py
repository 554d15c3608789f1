"""A file played at real time as a live source (`--realtime`): for demonstrations and tests of live views."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np

from ..audio.sources import AudioSource, Gap

CHUNK_S = 0.02  # audio handed on every 20 ms, as a sound card would


class RealtimeSource:
    """Wraps a file source: its blocks come out at the pace of a clock, as from a device (`live`: latency is
    measured, and a pipeline that falls behind loses audio instead of waiting)."""

    live = True
    overflows = 0

    def __init__(self, inner: AudioSource, speed: float = 1.0) -> None:
        self.inner = inner
        self.speed = speed
        self.path = getattr(inner, "path", "array")
        self.start_utc: datetime | None = None
        self._closed = threading.Event()

    @property
    def nonfinite(self) -> int:
        return self.inner.nonfinite

    def length(self, rate: int) -> None:
        """Unknown, as for a device: the run ends when the file does."""
        return

    def blocks(self, rate: int) -> Iterator[np.ndarray | Gap]:
        chunk = max(1, int(rate * CHUNK_S))
        t0, sent = time.monotonic(), 0
        self.start_utc = datetime.now(UTC)
        for block in self.inner.blocks(rate):
            if isinstance(block, Gap):
                sent += block.samples
                yield block
                continue
            for i in range(0, len(block), chunk):
                piece = block[i:i + chunk]
                due = t0 + (sent + len(piece)) / (rate * self.speed)
                if self._closed.wait(max(0.0, due - time.monotonic())):
                    return
                sent += len(piece)
                yield piece

    def close(self) -> None:
        self._closed.set()
        self.inner.close()
