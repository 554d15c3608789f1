"""Score thresholds per class: `--threshold 0.2,Dog=0.5` and `--thresholds FILE` (CSV label,threshold[,off])."""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

from ..errors import ConfigError
from ..models.labels import Labels


@dataclass(frozen=True)
class ClassThreshold:
    """One label's own threshold: `on` (window filter and event start) and, if given, the event's `off`."""

    index: int
    on: float
    off: float | None = None  # None: derived (the global off-threshold, else on / 2)

    def __post_init__(self) -> None:
        if not 0 <= self.on <= 1 or (self.off is not None and not 0 <= self.off <= self.on):
            raise ConfigError(f"class thresholds need 0 <= off <= on <= 1, got on={self.on} off={self.off}")


@dataclass(frozen=True)
class Thresholds:
    """A default threshold (None: not given) and the classes with their own, in the order given."""

    default: float | None = None
    classes: tuple[ClassThreshold, ...] = ()

    def merged(self, over: "Thresholds") -> "Thresholds":
        """These thresholds with `over`'s default and classes taking precedence."""
        named = {c.index: c for c in self.classes} | {c.index: c for c in over.classes}
        return Thresholds(self.default if over.default is None else over.default, tuple(named.values()))

    def per_class_windows(self) -> tuple[tuple[int, float], ...]:
        """(label index, threshold) pairs for `TagFilter.per_class`."""
        return tuple((c.index, c.on) for c in self.classes)

    def per_class_events(self, off_threshold: float | None) -> tuple[tuple[int, float, float], ...]:
        """(label index, on, off) for `EventSettings.per_class`: a class's own off, else the global
        off-threshold (at most its on), else half its on."""
        return tuple((c.index, c.on, c.off if c.off is not None else
                      c.on / 2 if off_threshold is None else min(off_threshold, c.on)) for c in self.classes)


def given_thresholds(labels: Labels, threshold: str | float | None = None,
                     thresholds_file: str | os.PathLike | None = None) -> Thresholds:
    """The thresholds of a `threshold` option over those of a `thresholds_file` (either may be None)."""
    base = read_thresholds(thresholds_file, labels) if thresholds_file is not None else Thresholds()
    return base.merged(parse_thresholds(threshold, labels))


def _score(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what}: {text.strip()!r} is not a number") from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ConfigError(f"{what}: a threshold must be between 0 and 1, got {text.strip()}")
    return value


def parse_thresholds(text: str | float | None, labels: Labels) -> Thresholds:
    """`0.3`, `Dog=0.5,Speech=0.3` or both (`0.2,Dog=0.5`); names or mids, which may contain commas."""
    if text is None:
        return Thresholds()
    if isinstance(text, (int, float)):
        return Thresholds(_score(str(text), "threshold"))
    default, classes, pending = None, {}, ""
    for part in str(text).split(","):
        if "=" not in part:
            if not pending and part.strip() and _is_number(part):
                if default is not None:
                    raise ConfigError(f"threshold {text!r}: give one default score, not two")
                default = _score(part, "threshold")
            else:
                pending += part + ","  # a label name with a comma in it ("Male speech, man speaking")
            continue
        name, _, value = (pending + part).rpartition("=")
        pending = ""
        if not name.strip():
            raise ConfigError(f"threshold {text!r}: a label is missing before '='")
        index = labels.index(name)
        classes[index] = ClassThreshold(index, _score(value, f"threshold for {name.strip()!r}"))
    if pending.strip(", "):
        raise ConfigError(f"threshold {text!r}: {pending.strip(', ')!r} has no '=score' "
                          f"(use a number, or label=score pairs)")
    return Thresholds(default, tuple(classes.values()))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_thresholds(path: str | os.PathLike, labels: Labels) -> Thresholds:
    """Per-class thresholds from a CSV of `label,threshold[,off_threshold]` rows (a header row is allowed)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the thresholds file ({e})") from None
    if rows and len(rows[0]) >= 2 and not _is_number(rows[0][1]):
        rows = rows[1:]  # a header such as label,threshold
    if not rows:
        raise ConfigError(f"{path}: no thresholds (expected rows of label,threshold[,off_threshold])")
    classes: dict[int, ClassThreshold] = {}
    for line, row in enumerate(rows, 1):
        where = f"{path}, row {line}"
        if len(row) not in (2, 3):
            raise ConfigError(f"{where}: expected label,threshold[,off_threshold], got {len(row)} fields")
        index = labels.index(row[0])
        if index in classes:
            raise ConfigError(f"{where}: {row[0].strip()!r} is listed twice")
        on = _score(row[1], where)
        off = _score(row[2], where) if len(row) == 3 and row[2].strip() else None
        if off is not None and off > on:
            raise ConfigError(f"{where}: the off-threshold {off} is above the threshold {on}")
        classes[index] = ClassThreshold(index, on, off)
    return Thresholds(None, tuple(classes.values()))


__all__ = ["ClassThreshold", "Thresholds", "given_thresholds", "parse_thresholds", "read_thresholds"]
