"""`streamtag train`: your own classes as a small head on a frozen backbone's window embeddings.

Data are folders per class (`DATA/<class>/*.wav`, `a,b` for several classes, `_background` or
`_negative` for none) or recordings with annotations (Raven tables, Audacity tracks, streamtag events,
or a CSV of file,onset,offset,label). Embeddings come from the normal streaming pipeline and are cached
under `$STREAMTAG_HOME/embeddings`; the head is trained in torch (BCE, class balancing, a validation
split by recording, early stopping) and keeps per-class thresholds chosen on validation.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..errors import ConfigError
from ..models import load_labels, streamtag_home
from ..models.head import Head, HeadInfo, backbone_sha256, head_payload
from ..models.loader import LIVE_WINDOWS, ModelChoice, RunTarget
from ..models.weights import sha256_file
from ..outputs.evaluation import read_segments
from ..outputs.plot import pyplot, save_figure
from ..index.search import is_review_file, read_review
from ..outputs.sinks import AtomicFile
from ..pipeline.tagger import Tagger
from .archive import AUDIO_EXTENSIONS, expand_inputs
from .job import Reporter, SilentReporter, build_tagger

NEGATIVE_FOLDERS = ("_background", "_negative")
EMBEDDING_CACHE_VERSION = 1


@dataclass(frozen=True)
class Recording:
    """One training recording and what it holds: whole-file classes (folders) or timed segments."""

    path: str
    classes: tuple[str, ...] = ()  # folder mode: every window has these
    segments: tuple[tuple[float, float, str], ...] = ()  # annotation mode: (onset_s, offset_s, class)
    annotated: bool = False
    negatives: tuple[tuple[float, float], ...] = ()  # reviewed and rejected stretches: hard negatives
    reviewed_only: bool = False  # only windows inside reviewed stretches count (a search's review file)


def find_recordings(data: Sequence[str | os.PathLike], annotations: Sequence[str | os.PathLike] = ()
                    ) -> list[Recording]:
    """Recordings from class folders, or (with `annotations`) from files and folders plus annotations."""
    if not data:
        raise ConfigError("no training data given")
    if annotations:
        return _annotated(data, annotations)
    out: list[Recording] = []
    for root in map(Path, data):
        if not root.is_dir():
            raise ConfigError(f"{root}: training data without --annotations must be a folder of class folders")
        folders = sorted(p for p in root.iterdir() if p.is_dir())
        if not folders:
            raise ConfigError(f"{root}: no class folders in it (expected {root}/<class>/*.wav)")
        for folder in folders:
            classes = () if folder.name in NEGATIVE_FOLDERS else \
                tuple(c.strip() for c in folder.name.split(",") if c.strip())
            files = sorted(str(f) for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
            if not files and classes and not any(folder.iterdir()):  # an empty class folder
                raise ConfigError(f"{folder}: no recording of {folder.name}: put at least one audio file in it "
                                  "(one is enough: it is split in time for validation), or remove the folder")
            out.extend(Recording(f, classes) for f in files)
    return out


def _annotated(data, annotations) -> list[Recording]:
    paths = expand_inputs(list(data))
    by_stem: dict[str, list[str]] = {}
    for p in paths:
        by_stem.setdefault(Path(p).stem, []).append(p)
    segments: dict[str, list[tuple[float, float, str]]] = {p: [] for p in paths}
    negatives: dict[str, list[tuple[float, float]]] = {p: [] for p in paths}
    reviewed: set[str] = set()
    named: set[str] = set()  # recordings some annotation file names
    for ann in map(os.fspath, annotations):
        if is_review_file(ann):  # a search's hits with the review column filled in
            names = {os.path.abspath(p): p for p in paths} | {Path(p).name: p for p in paths}
            for row in read_review(ann):
                path = names.get(os.path.abspath(row.file)) or names.get(Path(row.file).name)
                if path is None:
                    raise ConfigError(f"{ann}: {row.file} is not among the recordings given: add it to the data")
                reviewed.add(path)
                if row.label is None:
                    negatives[path].append((row.onset_s, row.offset_s))
                else:
                    segments[path].append((row.onset_s, row.offset_s, row.label))
            continue
        rows = _file_rows(ann, paths)
        if rows is None:  # no file column: the recording with the annotation file's stem
            stem = Path(ann).name.split(".")[0]
            matches = by_stem.get(stem, [])
            if len(matches) != 1:
                raise ConfigError(f"{ann}: no single recording named {stem}.* among the inputs to annotate "
                                  f"(found {len(matches)}); name the file or add a 'file' column")
            rows = [(matches[0], s.onset_s, s.offset_s, s.label) for s in read_segments(ann)]
        for path, onset, offset, label in rows:
            segments[path].append((onset, offset, label))
        named.update(path for path, *_ in rows)
    return [Recording(p, segments=tuple(sorted(segments[p])), annotated=True, negatives=tuple(sorted(negatives[p])),
                      reviewed_only=p in reviewed) for p in paths if not reviewed or p in reviewed or p in named]


def _file_rows(ann: str, paths: list[str]) -> list[tuple[str, float, float, str]] | None:
    """Rows of a CSV with a `file` column, matched to the inputs by path or name; None without that column."""
    try:
        with open(ann, newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
    except OSError as e:
        raise ConfigError(f"{ann}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{ann}: cannot read as text (not UTF-8)") from None
    if not table or "file" not in [c.strip().lower() for c in table[0]]:
        return None
    head = [c.strip().lower() for c in table[0]]
    segs = read_segments(ann)  # checks onset/offset/label, row by row
    column = head.index("file")
    names = {os.path.abspath(p): p for p in paths} | {Path(p).name: p for p in paths}
    rows = []
    for seg, row in zip(segs, [r for r in table[1:] if any(c.strip() for c in r)]):
        given = row[column].strip()
        path = names.get(os.path.abspath(os.path.join(os.path.dirname(ann), given))) or names.get(Path(given).name)
        if path is None:
            raise ConfigError(f"{ann}: {given!r} is not among the recordings given")
        rows.append((path, seg.onset_s, seg.offset_s, seg.label))
    return rows


def window_used(rec: Recording, starts: np.ndarray, window_s: float, min_overlap: float) -> np.ndarray:
    """[K] bool: the windows that take part in training: all, or for a reviewed recording those the reviewer
    heard, inside a reviewed stretch (accepted or rejected)."""
    if not rec.reviewed_only:
        return np.ones(len(starts), bool)
    used = np.zeros(len(starts), bool)
    for onset, offset in [(a, b) for a, b, _ in rec.segments] + list(rec.negatives):
        used |= _inside(starts, window_s, onset, offset)
    return used


def _inside(starts: np.ndarray, window_s: float, onset: float, offset: float) -> np.ndarray:
    return (starts >= onset - 1e-6) & (starts + window_s <= offset + 1e-6)


def window_targets(rec: Recording, starts: np.ndarray, window_s: float, classes: list[str],
                   min_overlap: float) -> np.ndarray:
    """[K, C] 0/1 targets: a folder's classes for every window, or the classes whose segments overlap a
    window by at least `min_overlap` of the shorter of the two."""
    y = np.zeros((len(starts), len(classes)), np.float32)
    index = {c: i for i, c in enumerate(classes)}
    if not rec.annotated:
        for c in rec.classes:
            y[:, index[c]] = 1
        return y
    ends = starts + window_s
    for onset, offset, label in rec.segments:
        if rec.reviewed_only:  # a reviewed hit is the windows heard: those inside it
            y[_inside(starts, window_s, onset, offset), index[label]] = 1
            continue
        overlap = np.minimum(ends, offset) - np.maximum(starts, onset)
        need = min_overlap * min(window_s, max(offset - onset, 1e-9))
        y[overlap >= need - 1e-9, index[label]] = 1
    return y


@dataclass
class EmbeddingCache:
    """Window embeddings on disk, keyed by the file's content, the backbone and its weights, window and hop."""

    folder: Path
    hits: int = 0
    misses: int = 0

    def key(self, path: str, tagger: Tagger, weights_sha: str | None) -> str:
        import hashlib
        w = tagger.window
        parts = [sha256_file(path), tagger.model_name, weights_sha or "", str(w.window), str(w.hop), str(w.rate),
                 str(EMBEDDING_CACHE_VERSION)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]

    def embeddings(self, path: str, tagger: Tagger, weights_sha: str | None) -> tuple[np.ndarray, np.ndarray]:
        """(start_s [K], embeddings [K, D]) of a recording, from the cache or the pipeline (then cached)."""
        dest = self.folder / f"{self.key(path, tagger, weights_sha)}.npz"
        try:
            with np.load(dest) as z:
                starts, emb = z["start_s"], z["embeddings"]
            self.hits += 1
            return starts, emb
        except (OSError, ValueError, KeyError):
            pass
        rows = [(r.start_s, r.embedding) for r in tagger.tag_file(path)]
        starts = np.asarray([s for s, _ in rows], np.float64)
        emb = np.stack([e for _, e in rows]).astype(np.float32)
        self.misses += 1
        try:
            with AtomicFile(dest, binary=True) as out:
                np.savez(out, start_s=starts, embeddings=emb)
        except OSError:
            pass  # a read-only home: train without caching
        return starts, emb


@dataclass(frozen=True)
class TrainJob:
    """What `streamtag train` does, checked: data, backbone, windows, head shape and training settings."""

    recordings: tuple[Recording, ...]
    classes: tuple[str, ...]
    output: str
    model: ModelChoice = ModelChoice()
    window_s: float = LIVE_WINDOWS[0]
    hop_s: float = LIVE_WINDOWS[1]
    target: RunTarget = RunTarget()
    hidden: int = 0
    epochs: int = 300
    patience: int = 20
    learning_rate: float = 1e-3
    seed: int = 0
    val_share: float = 0.25
    min_overlap: float = 0.5
    target_precision: float | None = None
    plot: str | None = None

    @classmethod
    def from_options(cls, data: Sequence[str | os.PathLike], *, output: str | os.PathLike,
                     annotations: Sequence[str | os.PathLike] = (), model: ModelChoice | str | None = None,
                     weights: str | None = None, window: float | None = None, hop: float | None = None,
                     target: RunTarget = RunTarget(),
                     hidden: int = 0, epochs: int = 300, patience: int = 20, learning_rate: float = 1e-3,
                     seed: int = 0, val_share: float = 0.25, min_overlap: float = 0.5,
                     target_precision: float | None = None, plot: str | None = None) -> "TrainJob":
        """A job from options as a user gives them; ConfigError naming the first that is wrong."""
        if hidden < 0 or epochs < 1 or patience < 1:
            raise ConfigError("hidden must be >= 0, epochs and patience >= 1")
        if not (0 < learning_rate < 1 and 0 <= val_share < 1 and 0 < min_overlap <= 1):
            raise ConfigError("the learning rate must be in (0, 1), the validation share in [0, 1), the overlap in "
                              "(0, 1]")
        if target_precision is not None and not 0 < target_precision <= 1:
            raise ConfigError(f"the target precision must be in (0, 1], got {target_precision}")
        if not str(output).endswith(".pt"):
            raise ConfigError(f"the head file must end in .pt, got {output}")
        recordings = find_recordings(data, annotations)
        if not recordings:
            raise ConfigError("no audio files found in the training data")
        classes = sorted({c for r in recordings for c in r.classes} | {s[2] for r in recordings for s in r.segments})
        if not classes:
            raise ConfigError("the training data names no class (only negatives): add a class folder with a "
                              "recording, or accept (or label) at least one row of a review file")
        choice = model if isinstance(model, ModelChoice) else ModelChoice.parse(model, weights)
        window = LIVE_WINDOWS[0] if window is None else window
        hop = LIVE_WINDOWS[1] if hop is None else hop
        return cls(tuple(recordings), tuple(classes), os.fspath(output), choice, float(window), float(hop), target,
                   hidden, epochs, patience, learning_rate, seed, val_share, min_overlap,
                   target_precision, plot)


@dataclass
class TrainReport:
    """How training went: per-class validation metrics, counts, the split and the embedding cache."""

    head: str
    classes: list[str]
    backbone: str
    window_s: float
    hop_s: float
    thresholds: dict[str, float]
    validation: dict[str, dict]  # class -> precision, recall, f1, average_precision, threshold
    counts: dict[str, dict]  # class -> train/validation recordings and windows
    train_recordings: list[str]
    validation_recordings: list[str]
    epochs: int
    cache: dict[str, int] = field(default_factory=dict)
    validated: bool = True  # False with --val-share 0: the thresholds follow THRESHOLD_RULE, untested
    threshold_rule: str = "best F1 on validation"
    time_split: dict[str, dict] = field(default_factory=dict)  # class -> file and held-out stretch, when split

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def split_by_recording(targets: list[np.ndarray], share: float, seed: int) -> np.ndarray:
    """Which recordings validate (True): about `share` of them, each class in both parts where it can be."""
    rng = np.random.default_rng(seed)
    n = len(targets)
    has = np.stack([t.max(axis=0) if len(t) else np.zeros(targets[0].shape[1]) for t in targets]) > 0
    val = np.zeros(n, bool)
    order = rng.permutation(n)
    for c in np.argsort(has.sum(axis=0), kind="stable"):  # rarest class first
        holders = [i for i in order if has[i, c]]
        if len(holders) >= 2 and not val[holders].any():
            train_left = [i for i in holders if not val[i]]
            if len(train_left) >= 2:
                val[train_left[-1]] = True
    for i in order:  # then up to the share, never taking a class's last training recording
        if val.sum() >= max(1, round(share * n)):
            break
        if not val[i] and all((has[:, c] & ~val).sum() > 1 for c in np.flatnonzero(has[i])):
            val[i] = True
    return val


THRESHOLD_RULE = "0.5 for every class (class-balanced BCE puts the decision boundary there); not validated"
TIME_SPLIT_MIN_WINDOWS = 3  # a one-recording class needs this many windows: train, gap, validation


def time_split(starts: np.ndarray, window_s: float, stretch: tuple[float, float]) -> np.ndarray:
    """[K] int8 per window: 2 inside the held-out `stretch` (validation), 1 clear of it (training), 0 for a window
    overlapping its edge (the gap), so no moment of audio is in a training and a validation window."""
    a, b = stretch
    ends = starts + window_s
    side = np.zeros(len(starts), np.int8)
    side[(ends <= a + 1e-9) | (starts >= b - 1e-9)] = 1
    side[(starts >= a - 1e-9) & (ends <= b + 1e-9)] = 2
    return side


def held_out_stretch(starts: np.ndarray, positive: np.ndarray, window_s: float, share: float,
                     name: str, path: str) -> tuple[float, float]:
    """The last `share` (at least one window) of a class's positive windows in its only recording, as a time
    stretch; leaves at least one positive window clear of it for training. ConfigError when too short."""
    pos = np.flatnonzero(positive)
    if len(pos) < TIME_SPLIT_MIN_WINDOWS:
        raise ConfigError(f"{name}: its only recording ({path}) has {len(pos)} window(s) of it, too few to hold "
                          f"some out for validation: add a recording, use a longer one, or train with --val-share 0")
    n_val = min(max(1, int(round(share * len(pos)))), len(pos) - 1)
    stretch = (float(starts[pos[-n_val]]), float(starts[pos[-1]] + window_s))
    if not (time_split(starts[pos], window_s, stretch) == 1).any():
        raise ConfigError(f"{name}: its only recording ({path}) is too short to keep a training stretch and a "
                          f"validation stretch a window apart: add a recording, or train with --val-share 0")
    return stretch


def split_windows(targets: list[np.ndarray], starts: list[np.ndarray], window_s: float, share: float, seed: int,
                  classes: list[str], paths: list[str]) -> tuple[list[np.ndarray], dict[str, dict]]:
    """Per recording, [K] int8 sides of its windows (1 training, 2 validation, 0 left out), and the stretches
    held out in time. Recordings validate whole where a class has several (`split_by_recording`); a class left
    without validation (one recording) has the last `share` of its windows held out, a window's gap apart."""
    n_classes = targets[0].shape[1] if targets else 0
    if share <= 0:
        return [np.ones(len(t), np.int8) for t in targets], {}
    val = split_by_recording(targets, share, seed)
    sides = [np.full(len(t), 2 if v else 1, np.int8) for t, v in zip(targets, val)]
    stretches: dict[str, dict] = {}
    for c in range(n_classes):
        if any(v and t[:, c].any() for t, v in zip(targets, val)):
            continue  # validated by a whole recording
        holders = [i for i, t in enumerate(targets) if t[:, c].any()]
        if not holders:
            continue
        i = holders[-1]
        a, b = held_out_stretch(starts[i], targets[i][:, c] > 0, window_s, share, classes[c], paths[i])
        cut = time_split(starts[i], window_s, (a, b))
        sides[i] = np.where(cut == 2, 2, np.where((cut == 0) | (sides[i] == 0), 0, sides[i])).astype(np.int8)
        stretches[classes[c]] = {"file": paths[i], "validation_s": [a, b]}
    return sides, stretches


def _fit(head: Head, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, job: TrainJob) -> int:
    """Train with BCE (positives weighted by the negatives per positive), Adam, early stopping on validation
    loss; the best state is kept. Returns the epochs run."""
    xt, yt, xvt, yvt = map(torch.from_numpy, (x, y, xv, yv))
    pos = yt.sum(0)
    pos_weight = ((len(yt) - pos) / pos.clamp(min=1)).clamp(1.0, 100.0)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    opt = torch.optim.Adam(head.parameters(), lr=job.learning_rate, weight_decay=1e-4)
    best, best_state, since, epoch = math.inf, None, 0, 0
    batch = 256
    gen = torch.Generator().manual_seed(job.seed)
    for epoch in range(1, job.epochs + 1):
        head.train()
        for idx in torch.randperm(len(xt), generator=gen).split(batch):
            opt.zero_grad()
            loss_fn(head(xt[idx]), yt[idx]).backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(head(xvt), yvt))
        if val_loss < best - 1e-5:
            best, since = val_loss, 0
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        else:
            since += 1
            if since >= job.patience:
                break
    if best_state is not None:
        head.load_state_dict(best_state)
    return epoch


def choose_threshold(scores: np.ndarray, truth: np.ndarray, target_precision: float | None) -> float:
    """The threshold with the best F1 on these scores (or the lowest reaching `target_precision`)."""
    if truth.sum() == 0:
        return 0.5
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], truth[order]
    tp = np.cumsum(t)
    fp = np.cumsum(1 - t)
    precision = tp / (tp + fp)
    recall = tp / t.sum()
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    last = np.r_[s[1:] != s[:-1], True]  # cut only between distinct scores
    ok = np.flatnonzero(last & (precision >= target_precision)) if target_precision is not None else []
    k = int(ok[-1]) if len(ok) else int(np.flatnonzero(last)[np.argmax(f1[last])])
    below = float(s[k + 1]) if k + 1 < len(s) else 0.0
    return (float(s[k]) + below) / 2  # midway to the next score below: a margin for unseen windows


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the precision-recall curve as a step function (scikit-learn's definition)."""
    if truth.sum() == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    t = truth[order]
    tp = np.cumsum(t)
    precision = tp / np.arange(1, len(t) + 1)
    return float((precision * t).sum() / t.sum())


def _metrics(scores: np.ndarray, truth: np.ndarray, threshold: float) -> dict:
    pred = scores >= threshold
    tp, fp, fn = int((pred & (truth > 0)).sum()), int((pred & (truth == 0)).sum()), int((~pred & (truth > 0)).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "average_precision": average_precision(scores, truth), "threshold": threshold,
            "positives": int(truth.sum()), "windows": int(len(truth))}


def save_head(head: Head, path: str | os.PathLike) -> HeadInfo:
    """Write a head file atomically (plain tensors and values); returns its info with the file's sha256."""
    with AtomicFile(path, binary=True) as out:
        torch.save(head_payload(head), out)
    return dataclasses.replace(head.info, sha256=sha256_file(path), path=os.fspath(path))


def train_head(data: Sequence[str | os.PathLike], *, output: str | os.PathLike, reporter: Reporter | None = None,
               **options) -> TrainReport:
    """Train a head on `data` (class folders, or recordings with `annotations=`) and save it to `output`;
    `options` are `TrainJob.from_options`'s (model, window, hop, hidden, seed, target_precision, ...)."""
    return run_train_job(TrainJob.from_options(data, output=output, **options), reporter)


def run_train_job(job: TrainJob, reporter: Reporter | None = None) -> TrainReport:
    """Embed every recording (cached), train the head, choose thresholds, save the head and its report."""
    reporter = reporter or SilentReporter()
    torch.manual_seed(job.seed)
    tagger = build_tagger(job.model, load_labels(), reporter, job.target, window=job.window_s, hop=job.hop_s)
    backbone = tagger.model
    weights_sha = backbone_sha256(backbone)
    cache = EmbeddingCache(streamtag_home() / "embeddings")
    classes = list(job.classes)
    xs, ys, ts, used = [], [], [], []
    reporter.notice(f"embedding {len(job.recordings)} recordings with {backbone.spec.name} "
                    f"({job.window_s:g} s windows, {job.hop_s:g} s hop; cached in {cache.folder})")
    for rec in job.recordings:
        starts, emb = cache.embeddings(rec.path, tagger, weights_sha)
        xs.append(emb)
        ys.append(window_targets(rec, starts, tagger.window.window_s, classes, job.min_overlap))
        ts.append(starts)
        used.append(window_used(rec, starts, tagger.window.window_s, job.min_overlap))
    keep = [u.nonzero()[0] for u in used]
    xs, ys, ts = [a[k] for a, k in zip(xs, keep)], [b[k] for b, k in zip(ys, keep)], [t[k] for t, k in zip(ts, keep)]
    names = [r.path for r in job.recordings]
    missing = [c for i, c in enumerate(classes) if not any(t[:, i].any() for t in ys)]
    if missing:
        raise ConfigError(f"no window of {', '.join(missing)} in the recordings: check the annotations' times "
                          "and files, or add a recording of it")
    sides, stretches = split_windows(ys, ts, tagger.window.window_s, job.val_share, job.seed, classes, names)
    validated = job.val_share > 0
    x = np.concatenate([a[s == 1] for a, s in zip(xs, sides)])
    y = np.concatenate([b[s == 1] for b, s in zip(ys, sides)])
    xv = np.concatenate([a[s == 2] for a, s in zip(xs, sides)]) if validated else x
    yv = np.concatenate([b[s == 2] for b, s in zip(ys, sides)]) if validated else y
    info = HeadInfo(classes=tuple(classes), backbone=backbone.spec.name, backbone_sha256=weights_sha,
                    window_s=tagger.window.window_s, hop_s=tagger.window.hop_s, embedding_dim=x.shape[1],
                    hidden=job.hidden, streamtag_version=__version__)
    head = Head(info)
    head.mean.copy_(torch.from_numpy(x.mean(axis=0)))
    head.std.copy_(torch.from_numpy(x.std(axis=0) + 1e-6))
    epochs = _fit(head, x, y, xv, yv, job)
    with torch.no_grad():
        scores = torch.sigmoid(head(torch.from_numpy(xv))).numpy()
    thresholds = [choose_threshold(scores[:, c], yv[:, c], job.target_precision) if validated else 0.5
                  for c in range(len(classes))]
    head.info = dataclasses.replace(info, thresholds=tuple(thresholds))
    saved = save_head(head, job.output)
    on_val = [bool((s == 2).any()) for s in sides]
    report = TrainReport(
        head=saved.path, classes=classes, backbone=info.backbone, window_s=info.window_s, hop_s=info.hop_s,
        thresholds=dict(zip(classes, thresholds)),
        validation={c: _metrics(scores[:, i], yv[:, i], thresholds[i]) for i, c in enumerate(classes)}
        if validated else {},
        counts={c: {"train_recordings": int(sum(1 for t, s in zip(ys, sides) if t[s == 1, i].any())),
                    "validation_recordings": int(sum(1 for t, s in zip(ys, sides) if validated and t[s == 2, i].any())),
                    "train_windows": int(y[:, i].sum()), "validation_windows": int(yv[:, i].sum()) if validated else 0}
                for i, c in enumerate(classes)},
        train_recordings=[n for n, s in zip(names, sides) if (s == 1).any()],
        validation_recordings=[n for n, v in zip(names, on_val) if v and validated], epochs=epochs,
        cache={"hits": cache.hits, "misses": cache.misses}, validated=validated,
        threshold_rule="best F1 on validation" if validated and job.target_precision is None else
        f"lowest reaching precision {job.target_precision} on validation" if validated else THRESHOLD_RULE,
        time_split=stretches)
    with AtomicFile(report_path(job.output)) as out:
        out.write(json.dumps(report.as_dict(), indent=2) + "\n")
    if job.plot and validated:
        plot_precision_recall(job.plot, classes, scores, yv)
    return report


def report_path(head_path: str | os.PathLike) -> str:
    """Where the report of a head is saved: beside it, `<head>.json`."""
    return str(Path(head_path).with_suffix(".json"))


def plot_precision_recall(path: str, classes: list[str], scores: np.ndarray, truth: np.ndarray) -> None:
    """Precision-recall curves of every class on validation, as a PNG (matplotlib)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    for i, c in enumerate(classes):
        if truth[:, i].sum() == 0:
            continue
        order = np.argsort(-scores[:, i], kind="stable")
        t = truth[order, i]
        tp = np.cumsum(t)
        ax.plot(tp / t.sum(), tp / np.arange(1, len(t) + 1),
                label=f"{c} (AP {average_precision(scores[:, i], truth[:, i]):.2f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("validation precision-recall")
    fig.tight_layout()
    save_figure(fig, path)


__all__ = ["THRESHOLD_RULE", "EmbeddingCache", "Recording", "TrainJob", "TrainReport", "choose_threshold",
           "find_recordings", "held_out_stretch", "report_path", "run_train_job", "save_head", "split_by_recording",
           "split_windows", "time_split", "train_head", "window_targets", "window_used"]
