"""A tagging job, validated once in the library: inputs, model choice, windows, run target, outputs and engine.

`TagJob.create(...)` takes the options as nested frozen objects (each validated where it lives) and checks how they
fit together (the CLI only parses them); `engines.tag.run_tag_job`
loads the model once, checks the outputs against it and runs the job on the chosen engine, reporting
through a `Reporter`.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import IO, Protocol, Sequence

from ..audio.clock import StartClock
from ..audio.ffmpeg import EXTRA, ffmpeg_available, is_url
from ..audio.inputs import InputOptions
from ..errors import ConfigError
from ..models.head_info import HeadInfo
from ..models.labels import Labels, load_labels
from ..models.loader import DEFAULT_WINDOWS, DefaultModelFallback, ModelChoice, RunTarget
from ..outputs.recording import OutputOptions, OutputPlan
from ..outputs.thresholds import ClassThreshold, Thresholds
from ..pipeline.tagger import Tagger
from ..windows import WindowSpec
from .archive import expand_inputs

ENGINES = ("local", "ray")
DEFAULT_SHARD_WINDOWS = 256


class ProgressBar(Protocol):
    """A per-file progress display the local engine advances once per window."""

    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


class Reporter(Protocol):
    """Where a job reports: notices (may be silenced), warnings about the data, per-file errors, progress."""

    def notice(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def error(self, message: str) -> None: ...

    def progress(self, line: str) -> None: ...

    def progress_bar(self, label: str, duration_s: float | None, windows: int | None) -> ProgressBar | None:
        """A progress display for one input (its length and window count None when not known: a stream)."""
        ...

    def text_output(self, stream: IO[str]) -> IO[str]:
        """The stream results are printed to (standard output), wrapped so progress displays stay intact."""
        ...


class SilentReporter:
    """A reporter that drops everything (library use); errors still end up in the `RunSummary`."""

    def notice(self, message: str) -> None:
        pass

    warning = error = progress = notice

    def progress_bar(self, label: str, duration_s: float | None, windows: int | None) -> None:
        return None

    def text_output(self, stream: IO[str]) -> IO[str]:
        return stream



def head_thresholds(head: HeadInfo | None, mode: str, offset: int) -> Thresholds:
    """A head's per-class thresholds (chosen on validation), indexed as the outputs' classes."""
    if head is None or not head.thresholds:
        return Thresholds()
    first = offset if mode == "append" else 0
    return Thresholds(None, tuple(ClassThreshold(first + i, t) for i, t in enumerate(head.thresholds)))


@dataclass(frozen=True)
class EngineOptions:
    """Where a tag job runs: locally, or sharded over a Ray cluster (its address, shard size, model replicas)."""

    engine: str = "local"
    address: str | None = None  # Ray cluster address (None: start a local Ray)
    shard_windows: int = DEFAULT_SHARD_WINDOWS
    workers: int | None = None  # Ray model replicas (None: one per GPU, else one per CPU)
    threads_per_worker: int | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r} (use {' or '.join(ENGINES)})")
        if self.shard_windows < 1:
            raise ConfigError(f"a shard needs at least 1 window, got {self.shard_windows}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")


@dataclass
class RunSummary:
    """Totals of one run over files (the Ray engine also writes it as run_summary.json)."""

    files: int = 0
    completed: int = 0
    skipped: list[str] = field(default_factory=list)  # already complete (resume)
    failed: list[dict] = field(default_factory=list)  # {"path", "error"}
    windows: int = 0
    shards: int = 0
    audio_s: float = 0.0
    elapsed_s: float = 0.0
    workers: int = 0
    engine: str = "local"
    interrupted: bool = False
    exit_code: int = 0  # after an interrupt: 128 + the signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)

    @property
    def windows_per_s(self) -> float:
        return self.windows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict:
        return asdict(self) | {"windows_per_s": round(self.windows_per_s, 3),
                               "realtime_factor": round(self.audio_s / self.elapsed_s, 3) if self.elapsed_s else 0.0}


@dataclass(frozen=True)
class TagJob:
    """Everything `streamtag tag` does, checked: which files, which model, which windows, which outputs, where."""

    inputs: tuple[str, ...]
    plan: OutputPlan
    labels: Labels = field(repr=False)  # the label file's classes (the backbone's outputs follow its order)
    model: ModelChoice = ModelChoice()
    window_s: float = DEFAULT_WINDOWS[0]
    hop_s: float = DEFAULT_WINDOWS[1]
    target: RunTarget = RunTarget()
    batch_size: int | None = None
    engine: EngineOptions = EngineOptions()
    input_options: InputOptions = InputOptions()  # audio stream choice, network reconnects
    clock: StartClock | None = None  # where each recording's wall-clock start comes from (None: not asked)

    @classmethod
    def create(cls, inputs: Sequence[str | os.PathLike], *, model: ModelChoice = ModelChoice(),
               window: float | None = None, hop: float | None = None, target: RunTarget = RunTarget(),
               batch_size: int | None = None, labels: str | os.PathLike | None = None,
               outputs: OutputOptions = OutputOptions(), engine: EngineOptions = EngineOptions(),
               input_options: InputOptions = InputOptions(), clock: StartClock | None = None) -> "TagJob":
        """A job from its parts as a user gives them (files, folders or .txt lists as inputs); ConfigError if any is
        wrong. window/hop default to the head's, else 10 s / 2.5 s; a head's per-class thresholds apply unless the
        outputs' thresholds name others. Inputs may be URLs (http(s), rtsp); `clock` gives outputs UTC times."""
        paths = tuple(expand_inputs(list(inputs)))
        if not paths:
            raise ConfigError("no audio files found in the inputs")
        if engine.engine == "ray" and not outputs.output_dir:
            raise ConfigError("the ray engine writes one set of files per input: give an output folder")
        urls = [p for p in paths if is_url(p)]
        if urls and engine.engine == "ray":
            raise ConfigError(f"the ray engine reads files its workers can open, not {urls[0]}: use the local engine")
        if clock is not None and clock.kind == "given" and len(paths) > 1:
            raise ConfigError("--start-time gives one recording's start: for several, use --start-time-from")
        if clock is not None and clock.kind == "metadata" and not ffmpeg_available():
            raise ConfigError(f"--start-time-from metadata reads container tags with FFmpeg: {EXTRA}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ConfigError(f"batch size must be a positive integer, got {batch_size!r}")
        info = model.head_info()
        window, hop = model.windows(window, hop)
        WindowSpec.from_seconds(window, hop, 1_000_000)  # finite and positive; the model minimum is checked at load
        label_set = load_labels(labels)
        plan = OutputPlan.from_options(model.output_labels(label_set), outputs, len(paths),
                                       head_thresholds(info, model.head_mode, len(label_set)))
        weights = ",".join(w or "" for w in model.weights) if any(model.weights) else None  # recorded: part of resume
        plan = dataclasses.replace(plan, weights=weights,
                                   head=None if info is None else {"path": info.path, "sha256": info.sha256,
                                                                  "classes": list(info.classes),
                                                                  "mode": model.head_mode},
                                   utc=clock is not None or bool(urls),
                                   clock=None if clock is None else clock.as_dict())
        return cls(inputs=paths, plan=plan, labels=label_set, model=model, window_s=float(window), hop_s=float(hop),
                   target=dataclasses.replace(target, frames=outputs.frames), batch_size=batch_size, engine=engine, input_options=input_options, clock=clock)

    def replace(self, **changes) -> "TagJob":
        return dataclasses.replace(self, **changes)

    def start_of(self, path: str) -> datetime | None:
        """The UTC start of recording `path` under this job's clock (None without one; live inputs use the
        capture clock); AudioReadError when its name or metadata does not say."""
        return None if self.clock is None or is_url(path) else self.clock.start_of(path)

    @property
    def output_labels(self) -> Labels:
        """The classes the outputs name: the label file's, or the head's (after them, in append mode)."""
        return self.model.output_labels(self.labels)

    def tagger(self, reporter: Reporter) -> Tagger:
        """Load the model and build the Tagger, checking the outputs against what it gives."""
        tagger = build_tagger(self.model, self.labels, reporter, self.target, window=self.window_s, hop=self.hop_s,
                              batch_size=self.batch_size)
        self.plan.check_model(tagger.model_name, tagger.model.has_scores)
        return tagger


def build_tagger(choice: ModelChoice, labels: Labels, reporter: Reporter, target: RunTarget, **options) -> Tagger:
    """A Tagger for `choice` on `target` (without torch when the export is cached); the loader's notices (the
    default model's fallback, a window much shorter than the training inputs) go to `reporter.notice`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tagger = Tagger(choice, labels=labels, target=target, **options)
    for w in caught:
        reporter.notice(str(w.message) if issubclass(w.category, DefaultModelFallback) else f"warning: {w.message}")
    return tagger


__all__ = ["DEFAULT_SHARD_WINDOWS", "ENGINES", "EngineOptions", "ProgressBar", "Reporter", "RunSummary",
           "SilentReporter", "TagJob", "build_tagger", "head_thresholds"]
