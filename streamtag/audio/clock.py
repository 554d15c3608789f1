"""Wall-clock time of recordings: a given start, one read from the file name, or the container's creation time."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import AudioReadError, ConfigError

CLOCK_KINDS = ("given", "name", "metadata")
_FIELDS = {"Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{1,2}", "d": r"\d{1,2}", "H": r"\d{1,2}", "M": r"\d{1,2}",
           "S": r"\d{1,2}", "f": r"\d{1,6}", "j": r"\d{1,3}", "z": r"(?:Z|[+-]\d{2}:?\d{2})", "b": r"[A-Za-z]{3}",
           "%": "%"}


def parse_utc(text: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (a time without an offset is UTC); ConfigError if malformed."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"start time {text!r} is not ISO 8601 (e.g. 2026-05-01T05:30:00Z)") from None
    return as_utc(t)


def as_utc(t: datetime) -> datetime:
    """`t` in UTC; a naive time is taken as UTC."""
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def name_regex(pattern: str) -> re.Pattern:
    """A regular expression finding the text a strftime `pattern` (%Y%m%d_%H%M%S, ...) writes."""
    parts, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "%":
            code = pattern[i + 1:i + 2]
            if code not in _FIELDS:
                raise ConfigError(f"file-name pattern {pattern!r}: %{code} is not supported "
                                  f"(use %{', %'.join(k for k in _FIELDS if k != '%')})")
            parts.append(_FIELDS[code])
            i += 2
        else:
            parts.append(re.escape(c))
            i += 1
    return re.compile("".join(parts))


@dataclass(frozen=True)
class StartClock:
    """Where each recording's UTC start comes from: `given` (one time), `name` (a strftime pattern found in the
    file name; a time without %z is UTC) or `metadata` (the container's creation_time)."""

    kind: str
    time: datetime | None = None  # given
    pattern: str | None = None  # name

    def __post_init__(self) -> None:
        if self.kind not in CLOCK_KINDS:
            raise ConfigError(f"unknown start-time source {self.kind!r} (use name:PATTERN or metadata)")
        if self.kind == "name":
            name_regex(self.pattern or "")

    @classmethod
    def from_options(cls, start_time: str | None = None, start_time_from: str | None = None) -> "StartClock | None":
        """The clock `--start-time ISO8601` or `--start-time-from name:PATTERN|metadata` ask for (None: neither)."""
        if start_time is not None and start_time_from is not None:
            raise ConfigError("give --start-time or --start-time-from, not both")
        if start_time is not None:
            return cls("given", parse_utc(start_time))
        if start_time_from is None:
            return None
        kind, _, pattern = start_time_from.partition(":")
        kind = kind.strip().lower()
        if kind == "name":
            if not pattern:
                raise ConfigError("--start-time-from name: needs a pattern, e.g. name:%Y%m%d_%H%M%S")
            return cls("name", pattern=pattern)
        if kind == "metadata" and not pattern:
            return cls("metadata")
        raise ConfigError(f"--start-time-from takes name:PATTERN or metadata, not {start_time_from!r}")

    def start_of(self, path: str) -> datetime:
        """The UTC time of `path`'s first sample; AudioReadError when its name or metadata does not say."""
        if self.kind == "given":
            return self.time
        if self.kind == "name":
            return self._from_name(path)
        from .ffmpeg import creation_time  # PyAV only when metadata is asked for
        text = creation_time(path)
        try:
            return parse_utc(text)
        except ConfigError:
            raise AudioReadError(f"{path}: its creation time {text!r} is not a time") from None

    def _from_name(self, path: str) -> datetime:
        name = os.path.basename(path.rstrip("/"))
        for match in name_regex(self.pattern).finditer(name):
            try:
                return as_utc(datetime.strptime(match.group(0).replace("Z", "+0000"), self.pattern))
            except ValueError:
                continue
        raise AudioReadError(f"{path}: its name holds no time in the form {self.pattern!r}")

    def as_dict(self) -> dict:
        """What the sidecar records (resume compares it)."""
        return {"kind": self.kind, "time": None if self.time is None else self.time.isoformat(),
                "pattern": self.pattern}
