"""What the pipeline publishes: one frozen `WindowResult` per window, and run statistics."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from ..models.labels import Labels


@dataclass(frozen=True, eq=False)
class WindowResult:
    """Scores and embedding of window `index` = samples [start_sample, end_sample) at the model rate."""

    index: int
    start_sample: int
    end_sample: int
    start_s: float
    end_s: float
    scores: np.ndarray | None = field(repr=False)  # float32 [527], sigmoid; None for embedding-only models
    embedding: np.ndarray = field(repr=False)  # float32 [D]
    model: str
    labels: Labels = field(repr=False)
    lost_samples: int = 0  # samples of this window lost before they were read (live overruns)
    latency_s: float | None = None  # last sample's arrival -> result ready (live sources)
    frames: np.ndarray | None = field(default=None, repr=False)  # float32 [F, Df] frame embeddings, if asked
    frame_times: np.ndarray | None = field(default=None, repr=False)  # float64 [F] absolute frame starts (s)
    stream_start_utc: datetime | None = None  # wall-clock (UTC) time of the stream's first sample, when known
    level_db: float | None = None  # the window's level, dBFS RMS (0 dB: full-scale square wave), when measured
    level_dba: float | None = None  # the same A-weighted (IEC 61672, 0 dB at 1 kHz)

    @property
    def start_utc(self) -> datetime | None:
        """The window's start as a UTC time (None without a known stream start)."""
        return None if self.stream_start_utc is None else self.stream_start_utc + timedelta(seconds=self.start_s)

    @property
    def end_utc(self) -> datetime | None:
        """The window's nominal end as a UTC time (None without a known stream start)."""
        return None if self.stream_start_utc is None else self.stream_start_utc + timedelta(seconds=self.end_s)

    @property
    def lossy(self) -> bool:
        """True when some of this window's audio was lost (filled with zeros)."""
        return self.lost_samples > 0

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The k highest-scoring labels as (display name, score), best first."""
        if self.scores is None:
            return []
        k = max(0, min(int(k), len(self.scores)))
        idx = np.argsort(-self.scores, kind="stable")[:k]
        return [(self.labels.names[i], float(self.scores[i])) for i in idx]


@dataclass(frozen=True, eq=False)
class FrontEndBatch:
    """What a batch's front-end saw, handed to `FrontEndSubscriber`s (a live view's level meter and log-mel
    strip): the audio span read from the ring and the log-mel frames computed."""

    start_sample: int  # the span's first sample in the stream, at the model rate
    audio: np.ndarray = field(repr=False)  # float32 [N]: the batch's audio (read-only; copy what you keep)
    first_frame: int | None  # absolute index of mel's first frame (None without shared frames)
    mel: np.ndarray | None = field(repr=False)  # float32 [n_mels, G] log-mel frames, or None (no shared front-end)


@dataclass(frozen=True)
class TaggerStats:
    """Totals of one run (a snapshot)."""

    windows: int = 0
    samples: int = 0  # samples received at the model rate
    lost_samples: int = 0  # samples lost: overwritten before they were read, or dropped by the source
    lossy_windows: int = 0
    device_overflows: int = 0  # input overflows the audio device reported
    nonfinite_samples: int = 0  # NaN/Inf input samples, replaced by 0
    subscriber_errors: int = 0
    elapsed_s: float = 0.0
    audio_s: float = 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio tagged per second of wall time."""
        return self.audio_s / self.elapsed_s if self.elapsed_s > 0 else 0.0
