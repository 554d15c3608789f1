"""Query by example over an index: examples from files, time ranges or earlier hits; hits merged into
segments; review files (CSV/JSONL/Raven/Audacity) and audio clips; ranking by a head's uncertainty."""
from __future__ import annotations

import csv
import json
import os
import re
import wave
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterable, Sequence

import numpy as np

from ..audio.inputs import open_audio
from ..errors import ConfigError
from ..outputs.detections import RAVEN_COLUMNS
from .store import IndexStore, WindowRow

if TYPE_CHECKING:
    from ..models.head import Head
    from ..pipeline.tagger import Tagger

COMBINE = ("mean", "max")
QUIET_BELOW_DB = 30.0  # example windows this far below the example's loudest are left out (silence)
REVIEW_COLUMN = "review"  # filled in by the reviewer: accept / reject (or a label)
_RANGE = re.compile(r"^(?P<path>.+):(?P<start>\d+(?:\.\d*)?)-(?P<end>\d+(?:\.\d*)?)$")
_WINDOW = re.compile(r"^#(?P<id>\d+)$")


@dataclass(frozen=True)
class Example:
    """Where a query's embeddings come from: a file, a stretch `file:START-END`, or an indexed window `#ID`."""

    path: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    window_id: int | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.window_id is None):
            raise ConfigError("an example is a file, a file:START-END stretch or a window #ID")
        if self.start_s is not None and (self.end_s is None or self.end_s <= self.start_s):
            raise ConfigError(f"{self.path}: an example stretch needs START < END, got "
                              f"{self.start_s}-{self.end_s}")

    @classmethod
    def parse(cls, text: str) -> "Example":
        """`dog.wav`, `long.wav:12.5-14`, or `#1234` (the window id in an earlier result's CSV/JSONL)."""
        text = str(text).strip()
        if m := _WINDOW.match(text):
            return cls(window_id=int(m["id"]))
        if (m := _RANGE.match(text)) and not os.path.exists(text):
            return cls(m["path"], float(m["start"]), float(m["end"]))
        return cls(text)

    @property
    def name(self) -> str:
        if self.window_id is not None:
            return f"#{self.window_id}"
        stem = Path(str(self.path)).stem
        return stem if self.start_s is None else f"{stem}:{self.start_s:g}-{self.end_s:g}"


@dataclass(frozen=True)
class Query:
    """Embedded examples: their unit vectors and the indexed window ids they are (to keep them out of hits)."""

    vectors: np.ndarray  # [E, D]
    window_ids: frozenset[int]
    files: tuple[str, ...]  # the examples' recordings
    name: str


def embed_examples(index: IndexStore, examples: Sequence[Example | str], tagger: "Tagger | None" = None) -> Query:
    """The query vectors of `examples`: indexed windows are read from the index, other audio is embedded with
    `tagger` (made from the index's description when None); quiet windows of a file are left out."""
    vecs, ids, files = [], set(), []
    for ex in (e if isinstance(e, Example) else Example.parse(e) for e in examples):
        if ex.window_id is not None:
            row = index.windows([ex.window_id])[0]
            vecs.append(index.vectors_of([row.id]))
            ids.add(row.id)
            files.append(row.file)
            continue
        path = str(ex.path)  # a file or a stretch of one (a window id was handled above)
        files.append(os.path.abspath(path) if "://" not in path else path)
        rows = index.file_windows(path, ex.start_s, ex.end_s)
        if rows:
            keep = _loud(np.array([w.level_db for w in rows])) if ex.start_s is None else np.ones(len(rows), bool)
            chosen = [w.id for w, k in zip(rows, keep) if k]
            vecs.append(index.vectors_of(chosen))
            ids.update(chosen)
            continue
        if tagger is None:
            from .store import tagger_for
            tagger = tagger_for(index.info)
        emb = example_embeddings(tagger, ex)
        vecs.append(emb)
    if not vecs or sum(len(v) for v in vecs) == 0:
        raise ConfigError("the examples give no window to search with")
    names = [e.name if isinstance(e, Example) else Example.parse(e).name for e in examples]
    return Query(np.concatenate(vecs), frozenset(ids), tuple(dict.fromkeys(files)), "+".join(names))


def _loud(levels: np.ndarray) -> np.ndarray:
    return levels >= levels.max() - QUIET_BELOW_DB


def example_embeddings(tagger: "Tagger", example: Example | str) -> np.ndarray:
    """[E, D] unit embeddings of an example's windows (a stretch's windows inside it; a file's loud ones)."""
    ex = example if isinstance(example, Example) else Example.parse(example)
    if ex.path is None:
        raise ConfigError(f"{ex.name}: a window id needs an index to read it from")
    emb, levels, starts, ends = [], [], [], []
    for r in tagger.iter_source(open_audio(ex.path)):
        emb.append(r.embedding)
        levels.append(r.level_db)
        starts.append(r.start_s)
        ends.append(r.end_s)
    if not emb:
        raise ConfigError(f"{ex.path}: no window to take an example from")
    e, lv, st, en = np.stack(emb).astype(np.float32), np.array(levels), np.array(starts), np.array(ends)
    if ex.start_s is not None and ex.end_s is not None:  # a stretch: both ends are given (Example checks it)
        keep = (st >= ex.start_s - 1e-6) & (en <= ex.end_s + 1e-6)
        if not keep.any():
            overlap = np.minimum(en, ex.end_s) - np.maximum(st, ex.start_s)
            keep = overlap == overlap.max()
            if overlap.max() <= 0:
                raise ConfigError(f"{ex.name}: the stretch is outside the recording")
    else:
        keep = _loud(lv)
    e = e[keep]
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Hit:
    """One window found: its metadata and score (similarity to the query, or a head's uncertainty)."""

    window: WindowRow
    score: float


@dataclass(frozen=True)
class Segment:
    """Adjacent hits of one file merged: onset/offset span their windows; score is the best, mean the average."""

    file: str
    onset_s: float
    offset_s: float
    score: float
    mean: float
    first_window: int  # window ids
    last_window: int
    windows: int
    onset_utc: str | None
    label: str = ""


def combine_scores(sims: np.ndarray, how: str) -> np.ndarray:
    """[E, N] similarities of N windows to E examples -> [N], by their mean or their max."""
    if how not in COMBINE:
        raise ConfigError(f"examples combine by {' or '.join(COMBINE)}, got {how!r}")
    return sims.mean(axis=0) if how == "mean" else sims.max(axis=0)


def search(index: IndexStore, query: Query | np.ndarray, k: int = 100, combine: str = "mean",
           exclude_files: Iterable[str] = (), exclude_windows: Iterable[int] = (),
           exclude_query: bool = True) -> list[Hit]:
    """The `k` windows most similar to the query (cosine; several examples combined by `combine`), best first.

    Candidates come from the HNSW graph (each example, and their mean) and are scored exactly; windows of
    `exclude_files`, the `exclude_windows` ids and (with `exclude_query`) the query's own windows are skipped.
    """
    if k < 1:
        raise ConfigError(f"the number of hits must be at least 1, got {k}")
    combine_scores(np.zeros((1, 1)), combine)
    vectors = query.vectors if isinstance(query, Query) else np.atleast_2d(np.asarray(query, np.float32))
    if vectors.shape[1] != index.info.dim:
        raise ConfigError(f"the query has {vectors.shape[1]}-d vectors; the index holds {index.info.dim}-d")
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    skip = set(int(i) for i in exclude_windows) | index.file_ids(exclude_files)
    if exclude_query and isinstance(query, Query):
        skip |= set(query.window_ids)
    probes = list(vectors) + ([vectors.mean(axis=0)] if len(vectors) > 1 else [])
    # at most this many probes: the examples' own windows first, then a sample of them
    if len(probes) > 64:
        pick = np.linspace(0, len(vectors) - 1, 63).round().astype(int)
        probes = [vectors[i] for i in pick] + [vectors.mean(axis=0)]
    want = min(len(index), k + len(skip))
    while True:
        candidates: set[int] = set()
        for p in probes:
            ids, _ = index.nearest(p, want)
            candidates.update(int(i) for i in ids)
        candidates -= skip
        if len(candidates) >= k or want >= len(index):
            break
        want = min(len(index), want * 2)
    ids = np.array(sorted(candidates), dtype=np.int64)
    if not len(ids):
        return []
    scores = combine_scores(vectors @ index.vectors_of(ids.tolist()).T, combine)
    order = np.argsort(-scores, kind="stable")[:k]
    rows = index.windows(ids[order])
    return [Hit(row, float(scores[j])) for row, j in zip(rows, order)]


def window_segments(hits: Sequence[Hit], label: str = "") -> list[Segment]:
    """One segment per hit (no merging), in the hits' order: for reviewing window by window."""
    return [Segment(h.window.file, h.window.start_s, h.window.end_s, h.score, h.score, h.window.id, h.window.id, 1,
                    h.window.start_utc, label) for h in hits]


def merge_hits(hits: Sequence[Hit], label: str = "", max_gap_s: float = 0.0) -> list[Segment]:
    """Hits of one file whose windows overlap or touch (or lie within `max_gap_s`) as one segment each, best
    segment first."""
    by_file: dict[str, list[Hit]] = {}
    for h in hits:
        by_file.setdefault(h.window.file, []).append(h)
    out: list[Segment] = []
    for file, group in by_file.items():
        group.sort(key=lambda h: h.window.index)
        run = [group[0]]
        ends: list[Hit | None] = [*group[1:], None]
        for nxt in ends:
            if nxt is not None and nxt.window.start_s <= max(x.window.end_s for x in run) + max_gap_s + 1e-6:
                run.append(nxt)
                continue
            scores = [x.score for x in run]
            out.append(Segment(file, run[0].window.start_s, max(x.window.end_s for x in run), max(scores),
                               float(np.mean(scores)), run[0].window.id, run[-1].window.id, len(run),
                               run[0].window.start_utc, label))
            run = [nxt] if nxt is not None else run
    out.sort(key=lambda s: (-s.score, s.file, s.onset_s))
    return out


def uncertain(index: IndexStore, head: "Head", k: int = 100, exclude_files: Iterable[str] = ()) -> list[Hit]:
    """The `k` windows the head is least sure about: score = 1 - |p - threshold| / max(threshold, 1 - threshold)
    for the class closest to its threshold (1 at the threshold, 0 at a sure 0 or 1)."""
    import torch

    if head.info.backbone != index.info.model or head.info.embedding_dim != index.info.dim:
        raise ConfigError(f"{head.info.path or 'the head'} was trained on {head.info.backbone} embeddings; the "
                          f"index holds {index.info.model}")
    thr = np.asarray(head.info.thresholds or [0.5] * len(head.info.classes), np.float32)
    span = np.maximum(thr, 1 - thr)
    skip = index.file_ids(exclude_files)
    best_ids = np.zeros(0, np.int64)
    best = np.zeros(0, np.float32)
    head.eval()
    for ids in index.all_ids():
        ids = ids[~np.isin(ids, list(skip))] if skip else ids
        if not len(ids):
            continue
        with torch.no_grad():
            p = torch.sigmoid(head(torch.from_numpy(_raw_vectors(index, ids)))).numpy()
        u = (1 - np.abs(p - thr) / span).max(axis=1)
        best_ids, best = np.concatenate([best_ids, ids]), np.concatenate([best, u])
        if len(best) > k:
            top = np.argpartition(-best, k - 1)[:k]
            best_ids, best = best_ids[top], best[top]
    order = np.argsort(-best, kind="stable")
    rows = index.windows(best_ids[order])
    return [Hit(r, float(best[j])) for r, j in zip(rows, order)]


def _raw_vectors(index: IndexStore, ids: np.ndarray) -> np.ndarray:
    # usearch keeps the vectors as added (the model's embeddings), which is what a head was trained on
    return np.asarray(index.vectors.get(ids.astype(np.uint64)), dtype=np.float32).reshape(len(ids), -1)


class Index(IndexStore):
    """An embeddings index: `Index.open(dir).search(["dog.wav"])`; `Index.create(dir, info).add_files(...)`."""

    def search(self, examples: Sequence[Example | str] | np.ndarray, k: int = 100, combine: str = "mean",
               exclude_files: Iterable[str] = (), exclude_examples_files: bool = False,
               tagger: "Tagger | None" = None) -> list[Hit]:
        """The `k` windows nearest the examples (files, `file:START-END`, `#ID`, or vectors), best first; the
        examples' own windows are never hits, and `exclude_examples_files` keeps their recordings out too."""
        query = examples if isinstance(examples, np.ndarray) else embed_examples(self, examples, tagger)
        files = list(exclude_files) + (list(query.files) if isinstance(query, Query) and exclude_examples_files
                                       else [])
        return search(self, query, k, combine, exclude_files=files)

    def uncertain(self, head: "Head", k: int = 100, exclude_files: Iterable[str] = ()) -> list[Hit]:
        """The `k` windows `head` is least sure about (see `uncertain`)."""
        return uncertain(self, head, k, exclude_files)


# -- review files ----------------------------------------------------------------------
CSV_COLUMNS = ["rank", "file", "onset_s", "offset_s", "onset_utc", "score", "mean", "windows", "first_window",
               "last_window", "label", REVIEW_COLUMN]


def _record(rank: int, s: Segment) -> dict:
    return {"rank": rank, "file": s.file, "onset_s": round(s.onset_s, 3), "offset_s": round(s.offset_s, 3),
            "onset_utc": s.onset_utc or "", "score": round(s.score, 4), "mean": round(s.mean, 4),
            "windows": s.windows, "first_window": s.first_window, "last_window": s.last_window, "label": s.label,
            REVIEW_COLUMN: ""}


def write_segments_csv(out: IO[str], segments: Sequence[Segment]) -> None:
    """One row per segment, with an empty `review` column for accept/reject (or a label)."""
    w = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for i, s in enumerate(segments, 1):
        w.writerow(_record(i, s))


def write_segments_jsonl(out: IO[str], segments: Sequence[Segment]) -> None:
    """One JSON object per segment (the CSV's fields)."""
    for i, s in enumerate(segments, 1):
        out.write(json.dumps(_record(i, s), ensure_ascii=False) + "\n")


def write_segments_raven(out: IO[str], segments: Sequence[Segment], max_freq_hz: float) -> None:
    """A Raven selection table (one selection per segment, `Begin Path` its file) with a `review` column."""
    w = csv.writer(out, delimiter="\t", lineterminator="\n")
    w.writerow(RAVEN_COLUMNS + [REVIEW_COLUMN])
    for i, s in enumerate(segments, 1):
        w.writerow([i, "Spectrogram 1", 1, f"{s.onset_s:.4f}", f"{s.offset_s:.4f}", "0", f"{max_freq_hz:.1f}",
                    s.label, f"{s.score:.4f}", s.file, f"{s.onset_s:.4f}", ""])


def write_segments_audacity(out: IO[str], segments: Sequence[Segment], file: str | None = None) -> None:
    """An Audacity label track (`start<TAB>end<TAB>label`) of one file's segments (all files when None)."""
    for s in sorted(segments, key=lambda s: (s.file, s.onset_s)):
        if file is None or s.file == file:
            name = s.label or "hit"
            where = "" if file is not None else f" {Path(s.file).name}"
            out.write(f"{s.onset_s:.6f}\t{s.offset_s:.6f}\t{name} ({s.score:.2f}){where}\n")


def write_clips(segments: Sequence[Segment], folder: str | os.PathLike, rate: int, pad_s: float = 0.0) -> list[str]:
    """Each segment's audio (mono, at `rate`, 16-bit WAV) as `NNN_<file>_<onset>-<offset>.wav`; the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, s in enumerate(segments, 1):
        start = max(0, int(round((s.onset_s - pad_s) * rate)))
        stop = int(round((s.offset_s + pad_s) * rate))
        source = open_audio(s.file, start=start, stop=stop)
        try:
            blocks = [b for b in source.blocks(rate) if isinstance(b, np.ndarray)]
        finally:
            source.close()
        audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        dest = folder / f"{i:03d}_{Path(s.file).stem}_{s.onset_s:.2f}-{s.offset_s:.2f}.wav"
        with wave.open(str(dest), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
        out.append(str(dest))
    return out


# -- reading a review back -------------------------------------------------------------
ACCEPT = {"accept", "accepted", "yes", "y", "1", "true", "ok", "+"}
REJECT = {"reject", "rejected", "no", "n", "0", "false", "-", "x"}


@dataclass(frozen=True)
class Reviewed:
    """One reviewed segment: a file's stretch and its label, or None for a rejected one (a hard negative)."""

    file: str
    onset_s: float
    offset_s: float
    label: str | None


def is_review_file(path: str | os.PathLike) -> bool:
    """Whether a CSV/TSV annotation file is a search result with a review column."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.readline()
    except (OSError, UnicodeDecodeError):
        return False
    cols = [c.strip().lower() for c in re.split("[\t,]", head)]
    return REVIEW_COLUMN in cols and ("file" in cols or "begin path" in cols)


def read_review(path: str | os.PathLike) -> list[Reviewed]:
    """The reviewed rows of a `search` CSV or Raven table: `accept` keeps the row's label, `reject` makes a hard
    negative, another word in `review` is the label itself; rows left empty are not reviewed and skipped."""
    path = os.fspath(path)
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    delim = "\t" if "\t" in text.split("\n", 1)[0] else ","
    rows = list(csv.DictReader(text.splitlines(), delimiter=delim))
    out = []
    for n, row in enumerate(rows, 2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        verdict = row.get(REVIEW_COLUMN, "")
        if not verdict:
            continue
        try:
            file = row.get("file") or row["begin path"]
            onset = float(row.get("onset_s") or row["begin time (s)"])
            offset = float(row.get("offset_s") or row["end time (s)"])
        except (KeyError, ValueError):
            raise ConfigError(f"{path}, line {n}: a reviewed row needs file, onset and offset") from None
        if not os.path.isabs(file) and "://" not in file:
            file = os.path.join(os.path.dirname(os.path.abspath(path)), file)
        if verdict.lower() in REJECT:
            label = None
        elif verdict.lower() in ACCEPT:
            label = row.get("label", "")
            if not label:
                raise ConfigError(f"{path}, line {n}: accepted, but the row has no label: fill the label column")
        else:
            label = verdict
        out.append(Reviewed(file, onset, offset, label))
    return out


def with_label(segments: Sequence[Segment], label: str) -> list[Segment]:
    """The segments named `label` (the label column of a review file)."""
    return [replace(s, label=label) for s in segments]


__all__ = ["COMBINE", "CSV_COLUMNS", "Example", "Hit", "Index", "Query", "Reviewed", "Segment", "combine_scores",
           "embed_examples", "example_embeddings", "is_review_file", "merge_hits", "read_review", "search",
           "uncertain", "window_segments", "with_label", "write_clips", "write_segments_audacity", "write_segments_csv",
           "write_segments_jsonl", "write_segments_raven"]
