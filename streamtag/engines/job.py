"""A tagging job, validated once in the library: inputs, model choice, windows, outputs and engine.

`TagJob.from_options(...)` checks every option (the CLI only parses them); `engines.tag.run_tag_job`
loads the model once, checks the outputs against it and runs the job on the chosen engine, reporting
through a `Reporter`.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Protocol, Sequence

from ..audio.clock import StartClock
from ..audio.ffmpeg import EXTRA, ffmpeg_available, is_url
from ..audio.inputs import InputOptions
from ..errors import ConfigError
from ..models import Labels, ModelSpec, load_labels, require_model_name, resolve_model
from ..models.head_info import HeadInfo, check_head_mode, head_windows
from ..models.runtimes import check_runtime
from ..outputs.recording import OutputPlan
from ..outputs.thresholds import ClassThreshold, Thresholds
from ..pipeline.tagger import TORCH_FRONTEND_FROM_S, DefaultModelFallback, Tagger

if TYPE_CHECKING:
    from ..models.exported import ExportedModel
    from ..models.model import TaggingModel
from ..windows import WindowSpec
from .archive import audio_seconds, expand_inputs

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



def output_labels(labels: Labels, head: HeadInfo | None, mode: str) -> Labels:
    """The classes a run's outputs name: the label file's, or a head's (after them in append mode)."""
    return labels if head is None else head.labels(labels, mode)


def head_thresholds(head: HeadInfo | None, mode: str, offset: int) -> Thresholds:
    """A head's per-class thresholds (chosen on validation), indexed as the outputs' classes."""
    if head is None or not head.thresholds:
        return Thresholds()
    first = offset if mode == "append" else 0
    return Thresholds(None, tuple(ClassThreshold(first + i, t) for i, t in enumerate(head.thresholds)))


@dataclass(frozen=True)
class ModelChoice:
    """Which model a job runs: a registry name (or spec) and, optionally, an explicit weights file.

    name None is the default model (`models.resolve_model` chooses it).
    """

    name: str | ModelSpec | None = None
    weights: str | None = None
    head: str | None = None  # a head file (`streamtag train`): its classes on this model's embeddings
    head_mode: str = "replace"  # replace | append (the head's scores after the model's own)

    def __post_init__(self) -> None:
        if self.head is None or self.name is not None:
            require_model_name(self.name, self.weights)
        check_head_mode(self.head_mode)

    def head_info(self) -> HeadInfo | None:
        """What the head file says (its classes, backbone, windows), or None without a head."""
        if self.head is None:
            return None
        from ..models.head import read_head_info
        return read_head_info(self.head)

    def load(self, labels: Labels | None = None) -> "tuple[TaggingModel, str | None]":
        """The backbone (the head's own when no name is given), and the notice when the default fell back."""
        name = self.name if self.name is not None or self.head is None else self.head_info().backbone
        return resolve_model(name, self.weights, labels)

    @classmethod
    def of(cls, model: "TaggingModel | ExportedModel") -> "ModelChoice":
        """The choice that rebuilds `model` elsewhere (a Ray worker): its name, its file when explicit, its head."""
        from ..models.head import HeadedModel
        head = None
        if isinstance(model, HeadedModel):
            model, head = model.base, model
        explicit = model.weights is not None and model.weights.origin == "explicit"
        return cls(model.spec.name, str(model.weights.path) if explicit else None,
                   None if head is None else head.head.info.path, "replace" if head is None else head.mode)


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
    window_s: float = 10.0
    hop_s: float = 2.5
    device: str = "auto"
    batch_size: int | None = None
    frames: bool = False
    runtime: str = "auto"  # what runs the network on CPU: auto | torch | openvino
    precision: str = "fp32"  # fp32 | bf16 (CPU or CUDA autocast) | fp16 (CUDA)
    engine: str = "local"
    address: str | None = None  # Ray cluster address (None: start a local Ray)
    shard_windows: int = DEFAULT_SHARD_WINDOWS
    workers: int | None = None  # Ray model replicas (None: one per GPU, else one per CPU)
    threads_per_worker: int | None = None
    input_options: InputOptions = InputOptions()  # audio stream choice, network reconnects
    clock: StartClock | None = None  # where each recording's wall-clock start comes from (None: not asked)

    @classmethod
    def from_options(cls, inputs: Sequence[str | os.PathLike], *, model: str | ModelSpec | None = None,
                     weights: str | None = None, window: float | None = None, hop: float | None = None,
                     device: str = "auto", head: str | os.PathLike | None = None, head_mode: str = "replace",
                     batch_size: int | None = None, labels: str | os.PathLike | None = None,
                     formats: Sequence[str] = (), output: str | None = None, output_dir: str | None = None,
                     top_k: int = 5, events: bool = False, include: str | Sequence[str] | None = None,
                     exclude: str | Sequence[str] | None = None, threshold: float | str | None = None,
                     thresholds: str | os.PathLike | None = None, off_threshold: float | None = None,
                     min_duration_s: float = 0.5, max_gap_s: float = 1.0,
                     median: int = 3, plot: str | None = None, frames: bool = False, engine: str = "local",
                     address: str | None = None, shard_windows: int = DEFAULT_SHARD_WINDOWS,
                     workers: int | None = None, threads_per_worker: int | None = None,
                     runtime: str = "auto", precision: str = "fp32", stream: int | None = None,
                     reconnect: int = 5, start_time: str | None = None,
                     start_time_from: str | None = None) -> "TagJob":
        """A job from options as a user gives them (files, folders or .txt lists as inputs); ConfigError if any is wrong.

        window/hop default to the head's (with `head`), else 10 s / 2.5 s; a head's per-class thresholds
        apply unless `threshold`/`thresholds` name others. Inputs may be URLs (http(s), rtsp); `stream`
        picks a container's audio stream; `start_time` (ISO 8601) or `start_time_from` (name:PATTERN or
        metadata) give outputs UTC times.
        """
        paths = tuple(expand_inputs(list(inputs)))
        if not paths:
            raise ConfigError("no audio files found in the inputs")
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine {engine!r} (use {' or '.join(ENGINES)})")
        if engine == "ray" and not output_dir:
            raise ConfigError("the ray engine writes one set of files per input: give an output folder")
        urls = [p for p in paths if is_url(p)]
        if urls and engine == "ray":
            raise ConfigError(f"the ray engine reads files its workers can open, not {urls[0]}: use the local engine")
        input_options = InputOptions(stream, reconnect)
        clock = StartClock.from_options(start_time, start_time_from)
        if clock is not None and clock.kind == "given" and len(paths) > 1:
            raise ConfigError("--start-time gives one recording's start: for several, use --start-time-from")
        if clock is not None and clock.kind == "metadata" and not ffmpeg_available():
            raise ConfigError(f"--start-time-from metadata reads container tags with FFmpeg: {EXTRA}")
        if shard_windows < 1:
            raise ConfigError(f"a shard needs at least 1 window, got {shard_windows}")
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ConfigError(f"batch size must be a positive integer, got {batch_size!r}")
        choice = ModelChoice(model, None if weights is None else os.fspath(weights),
                             None if head is None else os.path.abspath(head), head_mode)
        info = choice.head_info()
        window, hop = head_windows(info, window, hop, (10.0, 2.5))
        check_runtime(runtime)
        WindowSpec.from_seconds(window, hop, 1_000_000)  # finite and positive; the model minimum is checked at load
        label_set = load_labels(labels)
        plan = OutputPlan.from_options(
            output_labels(label_set, info, head_mode), formats=formats, output=output,
            output_dir=None if output_dir is None else os.fspath(output_dir), recordings=len(paths), top_k=top_k,
            threshold=threshold, thresholds=thresholds, include=include, exclude=exclude, events=events,
            off_threshold=off_threshold, min_duration_s=min_duration_s, max_gap_s=max_gap_s, median=median, plot=plot,
            frames=frames, base_thresholds=head_thresholds(info, head_mode, len(label_set)))
        plan = dataclasses.replace(plan, weights=None if weights is None else os.path.abspath(weights),
                                   head=None if info is None else {"path": info.path, "sha256": info.sha256,
                                                                  "classes": list(info.classes), "mode": head_mode},
                                   utc=clock is not None or bool(urls),
                                   clock=None if clock is None else clock.as_dict())
        return cls(paths, plan, label_set, choice, float(window), float(hop), device, batch_size, frames, runtime,
                   precision, engine, address, shard_windows, workers, threads_per_worker, input_options, clock)

    def replace(self, **changes) -> "TagJob":
        return dataclasses.replace(self, **changes)

    def start_of(self, path: str) -> datetime | None:
        """The UTC start of recording `path` under this job's clock (None without one; live inputs use the
        capture clock); AudioReadError when its name or metadata does not say."""
        return None if self.clock is None or is_url(path) else self.clock.start_of(path)

    @property
    def output_labels(self) -> Labels:
        """The classes the outputs name: the label file's, or the head's (after them, in append mode)."""
        return output_labels(self.labels, self.model.head_info(), self.model.head_mode)

    def tagger(self, reporter: Reporter, model: "TaggingModel | None" = None) -> Tagger:
        """Load the model (or use `model`) and build the Tagger, checking the outputs against what it gives."""
        tagger = build_tagger(self.model, self.labels, reporter, model, window=self.window_s, hop=self.hop_s,
                              device=self.device, batch_size=self.batch_size, frames=self.frames, runtime=self.runtime,
                              precision=self.precision,
                              audio_s=audio_seconds(list(self.inputs), TORCH_FRONTEND_FROM_S))
        self.plan.check_model(tagger.model_name, tagger.model.has_scores)
        return tagger


def build_tagger(choice: ModelChoice, labels: Labels, reporter: Reporter, model: "TaggingModel | None" = None,
                 **options) -> Tagger:
    """A Tagger for `model` (else `choice`, which the Tagger resolves: without torch when the export is cached);
    the default-model notice and the Tagger's warnings (e.g. a window much shorter than the training inputs) go
    to `reporter.notice`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if model is None:
            tagger = Tagger(choice.name, weights=choice.weights, labels=labels, head=choice.head,
                            head_mode=choice.head_mode, **options)
        else:
            from ..models.head import HeadedModel
            head = choice.head if not isinstance(model, HeadedModel) else None
            tagger = Tagger(model, labels=labels, head=head, head_mode=choice.head_mode, **options)
    for w in caught:
        reporter.notice(str(w.message) if issubclass(w.category, DefaultModelFallback) else f"warning: {w.message}")
    return tagger


__all__ = ["DEFAULT_SHARD_WINDOWS", "ENGINES", "ModelChoice", "ProgressBar", "Reporter", "RunSummary",
           "SilentReporter", "TagJob", "build_tagger"]
