"""What a Monitor reports: a closed event (`Detection`) with its source, levels, clip and privacy flag, and an
event that just opened (`EventStart`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Detection:
    """A closed event with where it came from, its sound level and SNR, its clip, and the privacy flag."""

    label: str
    mid: str
    onset_s: float
    offset_s: float
    peak: float
    mean: float
    source: str = ""
    model: str = ""
    weights_sha256: str | None = None
    onset_utc: datetime | None = None
    offset_utc: datetime | None = None
    level_db: float | None = None  # mean power of the event's windows, dBFS RMS
    level_dba: float | None = None  # the same A-weighted
    noise_floor_db: float | None = None  # the running noise floor when the event began
    snr_db: float | None = None  # level_db - noise_floor_db
    redacted: bool = False  # part of its time was private: clip audio silenced there
    clip_path: str | None = None
    id: int | None = None  # its database row, when stored

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s

    def message(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (alerts, exports)."""
        out: dict[str, Any] = {"label": self.label, "mid": self.mid, "onset_s": round(self.onset_s, 3),
                               "offset_s": round(self.offset_s, 3), "duration_s": round(self.duration_s, 3),
                               "peak": round(self.peak, 4), "mean": round(self.mean, 4), "source": self.source,
                               "model": self.model, "redacted": self.redacted}
        for key in ("level_db", "level_dba", "noise_floor_db", "snr_db"):
            value = getattr(self, key)
            out[key] = None if value is None else round(value, 2)
        out["onset_utc"] = None if self.onset_utc is None else self.onset_utc.isoformat()
        out["offset_utc"] = None if self.offset_utc is None else self.offset_utc.isoformat()
        out["clip"] = self.clip_path
        out["id"] = self.id
        return out


@dataclass(frozen=True)
class EventStart:
    """An event that just opened (sent to alerts before it closes)."""

    label: str
    mid: str
    onset_s: float
    score: float
    source: str = ""
    model: str = ""
    onset_utc: datetime | None = None
    level_db: float | None = None
    snr_db: float | None = None

    def message(self) -> dict[str, Any]:
        return {"label": self.label, "mid": self.mid, "onset_s": round(self.onset_s, 3),
                "score": round(self.score, 4), "source": self.source, "model": self.model,
                "onset_utc": None if self.onset_utc is None else self.onset_utc.isoformat(),
                "level_db": None if self.level_db is None else round(self.level_db, 2),
                "snr_db": None if self.snr_db is None else round(self.snr_db, 2)}
