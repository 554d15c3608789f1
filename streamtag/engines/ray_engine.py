"""Tag archives on a Ray cluster with Ray Data: shards of whole windows through an actor pool, one model per actor.

Each actor holds one `Tagger` and runs the ordinary pipeline on a shard (a `FileSource` that
starts a resampler lead-in early); the driver reassembles each file's shards in window order
and writes the same outputs as `streamtag tag`, plus `run_summary.json`. Files whose outputs
are already complete are skipped (resume); a file that fails is reported and skipped.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..errors import ConfigError, StreamtagError
from ..models import TaggingModel, create_model, load_labels
from ..outputs.recording import OutputPlan, RecordingOutputs, recording_stems
from ..outputs.sinks import open_text
from ..pipeline.tagger import load_default_model
from ..windows import WindowSpec
from .archive import Shard, count_windows, expand_inputs, plan_shards, shard_results, tag_shard

SUMMARY_FILE = "run_summary.json"
DEFAULT_SHARD_WINDOWS = 256
CRASH_ONCE_ENV = "STREAMTAG_TEST_CRASH_ONCE"  # tests: a marker path; the first actor to see it dies once


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("the Ray engine needs Ray: pip install 'streamtag[ray]'") from None
    return ray


@dataclass(frozen=True)
class ModelChoice:
    """The model every actor loads: a registry name and, optionally, an explicit weights file."""

    name: str
    weights: str | None = None


@dataclass(frozen=True)
class _Run:
    """What the driver's outputs need to know (as a Tagger would tell them)."""

    labels: object
    window: WindowSpec
    model_name: str
    sample_rate: int


@dataclass
class RunSummary:
    """Totals of one archive run (also written as run_summary.json)."""

    files: int = 0
    completed: int = 0
    skipped: list[str] = field(default_factory=list)  # already complete (resume)
    failed: list[dict] = field(default_factory=list)  # {"path", "error"}
    windows: int = 0
    shards: int = 0
    audio_s: float = 0.0
    elapsed_s: float = 0.0
    workers: int = 0
    engine: str = "ray"

    @property
    def windows_per_s(self) -> float:
        return self.windows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict:
        return asdict(self) | {"windows_per_s": round(self.windows_per_s, 3),
                               "realtime_factor": round(self.audio_s / self.elapsed_s, 3) if self.elapsed_s else 0.0}


class ShardWorker:
    """A Ray Data actor: loads the model once, then tags shard after shard."""

    def __init__(self, model: ModelChoice, window: float, hop: float, device: str, batch_size: int | None,
                 frames: bool, threads: int | None) -> None:
        import torch
        from ..pipeline.tagger import Tagger
        if threads:
            torch.set_num_threads(threads)
        self.tagger = Tagger(create_model(model.name, weights=model.weights), window=window, hop=hop,
                             device=device, batch_size=batch_size, frames=frames)

    def __call__(self, batch: dict) -> dict:
        import numpy as np
        marker = os.environ.get(CRASH_ONCE_ENV)
        if marker and os.path.exists(marker):
            os.unlink(marker)
            os._exit(1)  # simulate a worker dying mid-shard (tests of Ray's retries)
        payloads, errors = [], []
        for i in range(len(batch["path"])):
            shard = Shard(int(batch["file"][i]), str(batch["path"][i]), int(batch["index"][i]),
                          int(batch["first_window"][i]), int(batch["windows"][i]), bool(batch["last"][i]))
            try:
                payloads.append(tag_shard(self.tagger, shard))
                errors.append("")
            except StreamtagError as e:
                payloads.append(b"")
                errors.append(str(e))
        return {"file": np.asarray(batch["file"]), "index": np.asarray(batch["index"]),
                "payload": np.array(payloads, dtype=object), "error": np.array(errors, dtype=object)}


def _resolve_model(model: str | TaggingModel | None, weights: str | None) -> tuple[ModelChoice, TaggingModel]:
    """The model the actors will load, and one loaded here for its facts (rate, name)."""
    if not isinstance(model, TaggingModel):
        if model is None and weights is None:
            model, _ = load_default_model()
        else:
            model = create_model(model or "mn10_as", weights=weights)
    if "," in model.spec.name:
        raise ConfigError("the Ray engine runs one registered model (not an ensemble)")
    explicit = model.weights is not None and model.weights.origin == "explicit"
    return ModelChoice(model.spec.name, str(model.weights.path) if explicit else None), model


def tag_archive(inputs: list[str | os.PathLike], output_dir: str | os.PathLike, *,
                model: str | TaggingModel | None = None,
                weights: str | None = None, window: float = 10.0, hop: float = 2.5, plan: OutputPlan | None = None,
                labels: str | None = None, address: str | None = None, shard_windows: int = DEFAULT_SHARD_WINDOWS,
                device: str = "auto", batch_size: int | None = None, frames: bool = False,
                workers: int | None = None, threads_per_worker: int | None = None,
                progress: Callable[[str], None] | None = None) -> RunSummary:
    """Tag every input on Ray (starting a local instance when none is running and `address` is None).

    Outputs go to `output_dir` as `streamtag tag --output-dir` writes them (default: NPZ).
    """
    from ..outputs import EventSettings, TagFilter
    ray = _ray()
    t0 = time.monotonic()
    plan = plan or OutputPlan(("npz",), TagFilter(), EventSettings())
    plan = OutputPlan(plan.formats, plan.tags, plan.settings, plan.as_events, None, str(output_dir), plan.plot_path)
    choice, loaded = _resolve_model(model, weights)
    spec = loaded.spec
    win = WindowSpec.from_seconds(window, hop, spec.sample_rate, spec.min_samples)
    run = _Run(load_labels(labels), win, spec.name, spec.sample_rate)
    paths = expand_inputs(list(inputs))
    if not paths:
        raise ConfigError("no audio files found in the inputs")
    summary = RunSummary(files=len(paths))
    stems = recording_stems(paths)
    shards: dict[int, list[Shard]] = {}
    say = progress or (lambda line: None)
    for i, (path, stem) in enumerate(zip(paths, stems)):
        if plan.is_complete(stem, run):
            summary.skipped.append(path)
            continue
        try:
            shards[i] = plan_shards(i, path, count_windows(path, win), shard_windows)
        except StreamtagError as e:
            summary.failed.append({"path": path, "error": str(e)})
            say(f"error: {e}")
    rows = [asdict(s) for ss in shards.values() for s in ss]
    summary.shards = len(rows)
    total_windows = sum(s.windows for ss in shards.values() for s in ss)
    if rows:
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     configure_logging=False)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if device in ("auto", "cuda") else 0
        n = workers or max(1, gpus or int(resources.get("CPU", 1)))
        summary.workers = n
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        out = ds.map_batches(
            ShardWorker, batch_size=1, concurrency=n, num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
            fn_constructor_kwargs={"model": choice, "window": window, "hop": hop,
                                   "device": "cuda" if gpus else "cpu", "batch_size": batch_size, "frames": frames,
                                   "threads": threads_per_worker or (None if gpus else 1)})
        # Ray Data restarts a dead actor and retries its shard (actor max_restarts/max_task_retries default -1)
        done: dict[int, dict[int, bytes]] = {i: {} for i in shards}
        bad: set[int] = set()
        windows_done, last_say = 0, 0.0
        for row in out.iter_rows():
            i, j = int(row["file"]), int(row["index"])
            if i in bad:
                continue
            if row["error"]:
                bad.add(i)
                summary.failed.append({"path": paths[i], "error": str(row["error"])})
                say(f"error: {row['error']}")
                continue
            done[i][j] = row["payload"]
            windows_done += shards[i][j].windows
            if len(done[i]) == len(shards[i]):
                n_windows = _write_file(plan, run, paths[i], stems[i], shards[i], done.pop(i), summary)
                summary.windows += n_windows
                summary.completed += 1
            now = time.monotonic()
            if now - last_say >= 1.0 or windows_done == total_windows:
                last_say = now
                say(f"files {summary.completed + len(summary.skipped)}/{summary.files}, windows {windows_done}/"
                    f"{total_windows}, {windows_done / max(now - t0, 1e-9):.1f} windows/s")
    summary.elapsed_s = time.monotonic() - t0
    _write_summary(output_dir, summary)
    return summary


def _write_file(plan: OutputPlan, run: _Run, path: str, stem: str, shards: list[Shard], payloads: dict[int, bytes],
                summary: RunSummary) -> int:
    """Reassemble one file's shards in window order and write its outputs; returns its window count."""
    outputs = RecordingOutputs(plan, run, path, stem, None, first=True)
    n = 0
    try:
        for r in shard_results([payloads[s.index] for s in shards], shards, run.window, run.labels, run.model_name):
            outputs(r)
            n += 1
    except BaseException:
        outputs.discard()
        raise
    outputs.finish()
    summary.audio_s += (n - 1) * run.window.hop_s + run.window.window_s if n else 0.0
    return n


def _write_summary(output_dir: str | os.PathLike, summary: RunSummary) -> None:
    out, own = open_text(os.path.join(os.fspath(output_dir), SUMMARY_FILE))
    out.write(json.dumps(summary.as_dict(), indent=2) + "\n")
    own.commit()


def print_progress(line: str) -> None:
    print(f"streamtag: [ray] {line}", file=sys.stderr, flush=True)
