"""The 527 AudioSet labels (mid and display name), in model output order."""
from __future__ import annotations

import csv
import difflib
import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabelsError
from .weights import bundled_path, download, download_url, offline_message, streamtag_home

LABELS_FILE = "class_labels_indices.csv"
LABELS_URL = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/class_labels_indices.csv"
LABELS_SHA256 = "cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429"
LABELS_LICENSE = "AudioSet ontology, CC BY 4.0 (Google)"
NUM_CLASSES = 527



def _loose(name: str) -> str:
    """A label name for forgiving comparison: lower case, `_` and `-` as spaces, single spaces."""
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


@dataclass(frozen=True)
class Labels:
    """AudioSet class ids and display names; index i is model output i."""

    mids: tuple[str, ...]
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name_or_mid: str) -> int:
        """Index of a display name or mid, matched without regard to case, repeated spaces or `_` for a
        space (`bow-wow`, `BOW-WOW`, `male_speech,_man_speaking`); unknown names list close matches."""
        key = name_or_mid.strip().lower()
        for table in (self.names, self.mids):
            for i, v in enumerate(table):
                if v.lower() == key:
                    return i
        loose = _loose(name_or_mid)
        for i, v in enumerate(self.names):
            if _loose(v) == loose:
                return i
        close = difflib.get_close_matches(name_or_mid.strip(), self.names, n=3, cutoff=0.6) or \
            [self.names[i] for i, v in enumerate(self.names) if _loose(v).startswith(loose)][:3]
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise LabelsError(f"unknown AudioSet label {name_or_mid!r}{hint}")


def parse_labels(path: str | os.PathLike) -> Labels:
    """Read and check a `class_labels_indices.csv` (header index,mid,display_name; 527 rows in order)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise LabelsError(f"{path}: cannot read label file ({e})") from None
    if not rows or [c.strip() for c in rows[0]] != ["index", "mid", "display_name"]:
        raise LabelsError(f"{path}: not an AudioSet label file (header must be index,mid,display_name)")
    body = rows[1:]
    if len(body) != NUM_CLASSES or any(len(r) != 3 or r[0] != str(i) for i, r in enumerate(body)):
        raise LabelsError(f"{path}: expected {NUM_CLASSES} rows indexed 0..{NUM_CLASSES - 1}")
    return Labels(tuple(r[1] for r in body), tuple(r[2] for r in body))


def load_labels(path: str | os.PathLike | None = None) -> Labels:
    """Labels from an explicit path, else the bundled copy, else the cache, else the official URL."""
    if path is not None:
        if not Path(path).is_file():
            raise LabelsError(f"label file not found: {path}")
        return parse_labels(path)
    bundled = bundled_path(LABELS_FILE)
    if bundled is not None:
        return parse_labels(bundled)
    cached = streamtag_home() / LABELS_FILE
    if cached.is_file():
        return parse_labels(cached)
    url = download_url(LABELS_FILE, LABELS_URL)
    try:
        dest = download(url, cached, LABELS_SHA256)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise LabelsError(offline_message("the AudioSet label file", LABELS_FILE, url,
                                          str(getattr(e, "reason", None) or e), " (or pass --labels PATH / labels=PATH)")) from None
    return parse_labels(dest)
