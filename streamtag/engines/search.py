"""`streamtag index` and `streamtag search`: build an embeddings index of recordings, and find windows by example
(or by a head's uncertainty) with review files and clips."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError
from ..index import (COMBINE, Example, Index, Segment, embed_examples, merge_hits, tagger_info, window_segments,
                     write_clips, write_segments_audacity, write_segments_csv, write_segments_jsonl,
                     write_segments_raven)
from ..models import load_labels
from ..models.loader import ModelChoice, RunTarget
from ..outputs.sinks import AtomicFile
from .archive import expand_inputs
from .job import Reporter, SilentReporter, build_tagger

SEARCH_FORMATS = ("text", "csv", "jsonl", "raven", "audacity")
INDEX_WINDOWS = (1.0, 0.5)  # short windows find short sounds (as `listen` and `train`)


@dataclass(frozen=True)
class IndexJob:
    """What `streamtag index` does: which recordings, into which folder, with which backbone and windows."""

    inputs: tuple[str, ...]
    folder: str
    model: ModelChoice = ModelChoice()
    window_s: float = INDEX_WINDOWS[0]
    hop_s: float = INDEX_WINDOWS[1]
    target: RunTarget = RunTarget()

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("nothing to index: give recordings, folders or list files")
        if self.model.head is not None:
            raise ConfigError("an index holds a backbone's embeddings: give --model, not a head")


def run_index_job(job: IndexJob, reporter: Reporter | None = None):
    """Add every window of the inputs not yet indexed; returns the `AddReport`."""
    reporter = reporter or SilentReporter()
    paths = expand_inputs(list(job.inputs))
    tagger = build_tagger(job.model, load_labels(), reporter, job.target, window=job.window_s, hop=job.hop_s)
    with Index.create(job.folder, tagger_info(tagger)) as index:
        reporter.notice(f"indexing {len(paths)} recordings into {job.folder} ({index.info.describe()})")
        report = index.add_files(paths, tagger, progress=lambda p, n: reporter.notice(f"{p}: {n} windows"))
        reporter.notice(f"{len(report.added)} added ({report.windows} windows), {len(report.skipped)} already "
                        f"indexed; {job.folder} holds {len(index)} windows")
    return report


@dataclass(frozen=True)
class SearchJob:
    """What `streamtag search` does: the examples (or a head for uncertainty), how many hits, where they go."""

    folder: str
    examples: tuple[Example, ...] = ()
    k: int = 100
    combine: str = "mean"
    exclude_files: tuple[str, ...] = ()
    exclude_examples_files: bool = False
    label: str | None = None
    per_window: bool = False
    format: str = "text"
    output: str | None = None
    clips: str | None = None
    head: str | None = None
    uncertain: bool = False
    target: RunTarget = RunTarget()

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"--top must be at least 1, got {self.k}")
        if self.combine not in COMBINE:
            raise ConfigError(f"examples combine by {' or '.join(COMBINE)}, got {self.combine!r}")
        if self.format not in SEARCH_FORMATS:
            raise ConfigError(f"search writes {', '.join(SEARCH_FORMATS)}, not {self.format}")
        if self.uncertain and self.head is None:
            raise ConfigError("--uncertain ranks windows by a head's uncertainty: give --head HEAD.pt")
        if not self.uncertain and not self.examples:
            raise ConfigError("give at least one example: a file, file:START-END, or #WINDOW from an earlier result")

    @classmethod
    def create(cls, folder: str, examples: Sequence[str], **options) -> "SearchJob":
        return cls(folder, tuple(Example.parse(e) for e in examples), **options)


def run_search_job(job: SearchJob, reporter: Reporter | None = None) -> list[Segment]:
    """Search (or rank by uncertainty), write the review file and clips; returns the segments, best first."""
    reporter = reporter or SilentReporter()
    with Index.open(job.folder) as index:
        if job.uncertain and job.head is not None:
            from ..models.head import load_head
            head = load_head(job.head)
            hits = index.uncertain(head, job.k, job.exclude_files)
            label = job.label or ",".join(head.info.classes)
        else:
            tagger = None
            if any(e.path is not None and not index.file_windows(e.path) for e in job.examples):
                tagger = build_tagger(ModelChoice.parse(index.info.model), load_labels(), reporter, job.target,
                                      window=index.info.window_s, hop=index.info.hop_s)
                index.info.check(tagger_info(tagger), job.folder)
            query = embed_examples(index, job.examples, tagger)
            files = list(job.exclude_files) + (list(query.files) if job.exclude_examples_files else [])
            from ..index.search import search
            hits = search(index, query, job.k, job.combine, exclude_files=files)
            label = job.label or query.name
        segments = window_segments(hits, label) if job.per_window else merge_hits(hits, label)
        if job.clips:
            write_clips(segments, job.clips, index.info.rate)
        rate = index.info.rate
    if job.format == "text" and not job.output:
        return segments
    dest = job.output or "-"
    if dest == "-":
        import sys
        _write(sys.stdout, job.format, segments, rate)
    else:
        with AtomicFile(dest) as out:
            _write(out, job.format, segments, rate)
    return segments


def _write(out, fmt: str, segments: list[Segment], rate: int) -> None:
    if fmt in ("csv", "text"):
        write_segments_csv(out, segments)
    elif fmt == "jsonl":
        write_segments_jsonl(out, segments)
    elif fmt == "raven":
        write_segments_raven(out, segments, rate / 2)
    else:
        write_segments_audacity(out, segments)


def search_format(fmt: str | None, output: str | None) -> str:
    """The format given, else the output's extension's (.csv, .jsonl, .txt/.tsv Raven, .labels Audacity), else text."""
    if fmt:
        return fmt
    ext = Path(output or "").suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".tsv": "raven", ".txt": "raven", ".labels": "audacity"}.get(ext,
                                                                                                      "text")


__all__ = ["INDEX_WINDOWS", "SEARCH_FORMATS", "IndexJob", "SearchJob", "run_index_job", "run_search_job",
           "search_format"]
