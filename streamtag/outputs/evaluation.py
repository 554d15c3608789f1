"""Event-based precision, recall and F1 with a collar (the DCASE / sed_eval event-based definition).

sed_eval itself was last released in 2018 and pulls in dcase_util; the metric is small, so it
is written here: per label, each reference event matches at most one predicted event whose
onset lies within `collar` seconds and (unless `offsets=False`) whose offset lies within
max(collar, 0.2 x reference duration); matching is one to one.
"""
from __future__ import annotations

import csv
import json
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
    """Onset, offset, label rows from CSV/TSV (with a header naming onset/offset/label columns),
    streamtag events JSONL, or an Audacity label file (3 tab-separated columns, no header)."""
    path = os.fspath(path)
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    if lines[0].lstrip().startswith("{"):
        rows = [json.loads(ln) for ln in lines]
        return [Segment(float(r["onset_s"]), float(r["offset_s"]), r["label"]) for r in rows]
    delim = "\t" if "\t" in lines[0] else ","
    table = list(csv.reader(lines, delimiter=delim))
    head = [c.strip().lower() for c in table[0]]
    pick = {}
    for key, options in (("onset", ("onset_s", "onset", "begin time (s)", "start")),
                         ("offset", ("offset_s", "offset", "end time (s)", "end")), ("label", ("label", "event_label"))):
        pick[key] = next((head.index(o) for o in options if o in head), None)
    if None in pick.values():
        try:  # Audacity labels: start, end, label, no header
            float(table[0][0])
            pick, body = {"onset": 0, "offset": 1, "label": 2}, table
        except (ValueError, IndexError):
            raise ConfigError(f"{path}: needs onset, offset and label columns") from None
    else:
        body = table[1:]
    out = []
    for r in body:
        label = r[pick["label"]]
        if "(" in label and label.endswith(")") and delim == "\t" and pick["label"] == 2:
            label = label[:label.rindex("(")].strip()  # "Dog (0.81)" as streamtag writes Audacity labels
        out.append(Segment(float(r[pick["onset"]]), float(r[pick["offset"]]), label))
    return out


def event_scores(reference: list[Segment], predicted: list[Segment], collar: float = 0.5,
                 offsets: bool = True, only_reference_labels: bool = True) -> dict[str, Scores]:
    """Per-label TP/FP/FN; predictions of labels absent from the reference are ignored unless asked."""
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


def overall(per_label: dict[str, Scores]) -> Scores:
    """Micro-average over labels."""
    return Scores(*(sum(getattr(s, k) for s in per_label.values()) for k in ("tp", "fp", "fn")))
