"""Event-based precision, recall and F1 with a collar (the DCASE / sed_eval event-based definition).

sed_eval itself was last released in 2018 and pulls in dcase_util; the metric is small, so it
is written here: per label, each reference event matches at most one predicted event whose
onset lies within `collar` seconds and (unless `offsets=False`) whose offset lies within
max(collar, 0.2 x reference duration); matching is one to one.
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class Segment:
    onset_s: float
    offset_s: float
    label: str


@dataclass(frozen=True)
class Scores:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def read_segments(path: str | os.PathLike) -> list[Segment]:
    """Onset, offset, label rows from CSV/TSV (with a header naming onset/offset/label columns; Raven's
    Begin/End Time (s) with Annotation, Class, Species or Common Name),
    streamtag events JSONL, or an Audacity label file (3 tab-separated columns, no header).
    A row that is not a valid event (bad number, offset before onset, no label) raises ConfigError naming it."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read as text ({getattr(e, 'strerror', None) or e})") from None
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines:
        return []
    if lines[0][1].lstrip().startswith("{"):
        out = []
        for n, ln in lines:
            try:
                r = json.loads(ln)
                out.append(_segment(path, n, r["onset_s"], r["offset_s"], r["label"]))
            except (ValueError, KeyError, TypeError) as e:
                if isinstance(e, ConfigError):
                    raise
                raise ConfigError(f"{path}, line {n}: not an event row with onset_s, offset_s and label "
                                  f"({type(e).__name__}: {e})") from None
        return out
    delim = "\t" if "\t" in lines[0][1] else ","
    numbers = [n for n, _ in lines]
    table = list(csv.reader([ln for _, ln in lines], delimiter=delim))
    head = [c.strip().lower() for c in table[0]]
    pick = {}
    for key, options in (("onset", ("onset_s", "onset", "begin time (s)", "start")),
                         ("offset", ("offset_s", "offset", "end time (s)", "end")),
                         ("label", ("label", "event_label", "annotation", "class", "species", "common name"))):
        pick[key] = next((head.index(o) for o in options if o in head), None)
    if None in pick.values():
        try:  # Audacity labels: start, end, label, no header
            float(table[0][0])
            pick, first = {"onset": 0, "offset": 1, "label": 2}, 0
        except (ValueError, IndexError):
            raise ConfigError(f"{path}: needs onset, offset and label columns") from None
    else:
        first = 1
    out = []
    width = max(pick.values()) + 1
    for n, r in zip(numbers[first:], table[first:]):
        if len(r) < width:
            raise ConfigError(f"{path}, line {n}: expected at least {width} columns, got {len(r)}")
        label = r[pick["label"]].strip()
        if "(" in label and label.endswith(")") and delim == "\t" and pick["label"] == 2:
            label = label[:label.rindex("(")].strip()  # "Dog (0.81)" as streamtag writes Audacity labels
        out.append(_segment(path, n, r[pick["onset"]], r[pick["offset"]], label))
    return out


def _segment(path: str, line: int, onset: object, offset: object, label: object) -> Segment:
    """A checked segment: finite onset >= 0, offset >= onset, a non-empty label."""
    try:
        on, off = float(onset), float(offset)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}, line {line}: onset {onset!r} and offset {offset!r} must be numbers") from None
    if not (math.isfinite(on) and math.isfinite(off)) or on < 0 or off < on:
        raise ConfigError(f"{path}, line {line}: needs 0 <= onset <= offset (finite), got {on:g}-{off:g}")
    if not isinstance(label, str) or not label.strip():
        raise ConfigError(f"{path}, line {line}: the label is empty")
    return Segment(on, off, label.strip())


def event_scores(reference: list[Segment], predicted: list[Segment], collar: float = 0.5,
                 offsets: bool = True, only_reference_labels: bool = True) -> dict[str, Scores]:
    """Per-label TP/FP/FN; predictions of labels absent from the reference are ignored unless asked."""
    if not 0 <= collar < math.inf:
        raise ConfigError(f"the collar must be finite and >= 0 s, got {collar}")
    labels = sorted({s.label for s in reference} | (set() if only_reference_labels
                                                    else {s.label for s in predicted}))
    result = {}
    for label in labels:
        ref = sorted((s for s in reference if s.label == label), key=lambda s: s.onset_s)
        est = sorted((s for s in predicted if s.label == label), key=lambda s: s.onset_s)
        used: set[int] = set()
        tp = 0
        for r in ref:
            offset_collar = max(collar, 0.2 * (r.offset_s - r.onset_s))
            best, best_d = None, None
            for j, e in enumerate(est):
                if j in used or abs(e.onset_s - r.onset_s) > collar:
                    continue
                if offsets and abs(e.offset_s - r.offset_s) > offset_collar:
                    continue
                d = abs(e.onset_s - r.onset_s)
                if best_d is None or d < best_d:
                    best, best_d = j, d
            if best is not None:
                used.add(best)
                tp += 1
        result[label] = Scores(tp, len(est) - tp, len(ref) - tp)
    return result


def ignored_labels(reference: list[Segment], predicted: list[Segment]) -> list[str]:
    """The predicted labels that the reference never names (what `event_scores` leaves out unless asked), sorted."""
    named = {s.label for s in reference}
    return sorted({s.label for s in predicted} - named)


def ignored_notice(reference: list[Segment], predicted: list[Segment]) -> str | None:
    """One line naming the predicted labels left out of the scores (None when there are none)."""
    ignored = ignored_labels(reference, predicted)
    if not ignored:
        return None
    events = sum(1 for s in predicted if s.label in set(ignored))
    return (f"ignored {len(ignored)} predicted label(s) absent from the reference ({events} events): "
            f"{', '.join(ignored)}; --all-labels counts them as false positives")


def overall(per_label: dict[str, Scores]) -> Scores:
    """Micro-average over labels."""
    return Scores(*(sum(getattr(s, k) for s in per_label.values()) for k in ("tp", "fp", "fn")))
