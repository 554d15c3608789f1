"""Tag archives on a Ray cluster with Ray Data: shards of whole windows through an actor pool, one model per actor.

Each actor holds one `Tagger` and runs the ordinary pipeline on a shard (a file source that
starts a resampler lead-in early); the driver reassembles each file's shards in window order
and writes the same outputs as `streamtag tag`, plus `run_summary.json`. Files whose outputs
are already complete are skipped (resume); a file that fails is reported and skipped.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from ..errors import ConfigError, StreamtagError
from ..models import Labels
from ..models.loader import ModelChoice, RunTarget
from ..outputs.recording import OutputOptions, OutputPlan, RecordingOutputs, recording_stems
from ..outputs.sinks import open_text, remove_stale_partials
from ..windows import WindowSpec
from .archive import Shard, count_windows, plan_shards, shard_results, tag_shard
from .job import EngineOptions, Reporter, RunSummary, SilentReporter, TagJob
from .signals import exit_code, signal_handlers_kept

if TYPE_CHECKING:
    from ..pipeline.tagger import Tagger

SUMMARY_FILE = "run_summary.json"


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("the Ray engine needs Ray: pip install 'streamtag[ray]'") from None
    return ray


@dataclass(frozen=True)
class _Run:
    """What the driver's outputs need to know (as a Tagger would tell them)."""

    labels: Labels
    window: WindowSpec
    model_name: str
    sample_rate: int


class ShardWorker:
    """A Ray Data actor: loads the job's model once (the same `models.load` as every run), then tags shard after
    shard."""

    def __init__(self, job: TagJob, threads: int | None) -> None:
        from ..pipeline.tagger import Tagger
        if threads:
            import torch
            torch.set_num_threads(threads)
        self.tagger = Tagger(job.model, job.window_s, job.hop_s, labels=job.labels, target=job.target,
                             batch_size=job.batch_size)
        self.input_options = job.input_options

    def __call__(self, batch: dict) -> dict:
        import numpy as np
        payloads, errors = [], []
        for i in range(len(batch["path"])):
            shard = Shard(int(batch["file"][i]), str(batch["path"][i]), int(batch["index"][i]),
                          int(batch["first_window"][i]), int(batch["windows"][i]), bool(batch["last"][i]))
            try:
                payloads.append(tag_shard(self.tagger, shard, self.input_options))
                errors.append("")
            except StreamtagError as e:
                payloads.append(b"")
                errors.append(str(e))
        return {"file": np.asarray(batch["file"]), "index": np.asarray(batch["index"]),
                "payload": np.array(payloads, dtype=object), "error": np.array(errors, dtype=object)}


def tag_archive(inputs: list[str | os.PathLike], output_dir: str | os.PathLike, *,
                model: ModelChoice = ModelChoice(), window: float | None = None, hop: float | None = None,
                target: RunTarget = RunTarget(), outputs: OutputOptions = OutputOptions(formats=("npz",)),
                engine: EngineOptions = EngineOptions(engine="ray"), labels: str | None = None,
                batch_size: int | None = None, progress: Callable[[str], None] | None = None) -> RunSummary:
    """Tag every input on Ray (starting a local instance when none is running and `engine.address` is None).

    Outputs go to `output_dir` as `streamtag tag --output-dir` writes them (default: NPZ).
    """
    job = TagJob.create(inputs, model=model, window=window, hop=hop, target=target, batch_size=batch_size,
                        labels=labels, outputs=dataclasses.replace(outputs, output=None, output_dir=os.fspath(output_dir)),
                        engine=dataclasses.replace(engine, engine="ray"))
    reporter = _LineReporter(progress) if progress else SilentReporter()
    return run_on_ray(job, job.tagger(reporter), reporter)


class _LineReporter(SilentReporter):
    """Progress and errors as lines to one callback (the `progress=` of `tag_archive`)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def error(self, message: str) -> None:
        self.say(f"error: {message}")

    def progress(self, line: str) -> None:
        self.say(line)


def run_on_ray(job: TagJob, tagger: "Tagger", reporter: Reporter) -> RunSummary:
    """Run `job` on Ray with actors that load its model as `tagger` did here (a registered model, not an
    ensemble)."""
    ray = _ray()
    t0 = time.monotonic()
    model = tagger.model
    if job.model.is_ensemble:
        raise ConfigError("the Ray engine runs one registered model (not an ensemble)")
    plan, output_dir = job.plan, job.plan.output_dir
    stale = remove_stale_partials(output_dir)
    if stale:
        reporter.notice(f"removed {len(stale)} temporary file(s) left by an interrupted run in {output_dir}")
    spec = model.spec
    win = tagger.window
    run = _Run(job.output_labels, win, spec.name, model.sample_rate)
    paths = list(job.inputs)
    summary = RunSummary(files=len(paths), engine="ray")
    stems = recording_stems(paths)
    shards: dict[int, list[Shard]] = {}
    seconds: dict[int, float] = {}  # each file's length, where its events and plot end
    starts: dict[int, datetime | None] = {}  # each file's wall-clock start (with a job clock)
    for i, (path, stem) in enumerate(zip(paths, stems)):
        if plan.is_complete(stem, run):
            summary.skipped.append(path)
            continue
        try:
            starts[i] = job.start_of(path)
            windows, seconds[i] = count_windows(path, win, job.input_options)
            shards[i] = plan_shards(i, path, windows, job.engine.shard_windows)
        except StreamtagError as e:
            summary.failed.append({"path": path, "error": str(e)})
            reporter.error(str(e))
    rows = [asdict(s) for ss in shards.values() for s in ss]
    summary.shards = len(rows)
    total_windows = sum(s.windows for ss in shards.values() for s in ss)
    if rows:
        if not ray.is_initialized():
            with signal_handlers_kept():  # SIGTERM stays an interrupt of this run, not Ray's instant exit
                ray.init(address=job.engine.address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                         configure_logging=False)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if job.target.device in ("auto", "cuda") else 0
        n = job.engine.workers or max(1, gpus or int(resources.get("CPU", 1)))
        summary.workers = n
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        out = ds.map_batches(
            ShardWorker, batch_size=1, concurrency=n, num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
            fn_constructor_kwargs={
                "job": job.replace(target=dataclasses.replace(job.target, device="cuda" if gpus else "cpu")),
                "threads": job.engine.threads_per_worker or (None if gpus else 1)})
        # Ray Data restarts a dead actor and retries its shard (actor max_restarts/max_task_retries default -1)
        done: dict[int, dict[int, bytes]] = {i: {} for i in shards}
        bad: set[int] = set()
        windows_done, last_say = 0, 0.0
        try:
            for row in out.iter_rows():
                i, j = int(row["file"]), int(row["index"])
                if i in bad:
                    continue
                if row["error"]:
                    bad.add(i)
                    summary.failed.append({"path": paths[i], "error": str(row["error"])})
                    reporter.error(str(row["error"]))
                    continue
                done[i][j] = row["payload"]
                windows_done += shards[i][j].windows
                if len(done[i]) == len(shards[i]):
                    n_windows = _write_file(plan, run, paths[i], stems[i], shards[i], done.pop(i), seconds[i],
                                            starts[i])
                    summary.windows += n_windows
                    summary.audio_s += seconds[i]
                    summary.completed += 1
                now = time.monotonic()
                if now - last_say >= 1.0 or windows_done == total_windows:
                    last_say = now
                    reporter.progress(f"files {summary.completed + len(summary.skipped)}/{summary.files}, windows "
                                      f"{windows_done}/{total_windows}, "
                                      f"{windows_done / max(now - t0, 1e-9):.1f} windows/s")
        except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM: the files finished so far stay
            summary.interrupted, summary.exit_code = True, exit_code(e)
    summary.elapsed_s = time.monotonic() - t0
    _write_summary(output_dir, summary)
    return summary


def _write_file(plan: OutputPlan, run: _Run, path: str, stem: str, shards: list[Shard], payloads: dict[int, bytes],
                audio_s: float, start_utc: datetime | None = None) -> int:
    """Reassemble one file's shards in window order and write its outputs (`audio_s` long, starting at
    `start_utc` when known); returns its window count."""
    outputs = RecordingOutputs(plan, run, path, stem, None, first=True)
    n = 0
    try:
        for r in shard_results([payloads[s.index] for s in shards], shards, run.window, run.labels, run.model_name,
                               start_utc):
            outputs(r)
            n += 1
    except BaseException:
        outputs.discard()
        raise
    outputs.finish(audio_s)
    return n


def _write_summary(output_dir: str | os.PathLike, summary: RunSummary) -> None:
    out, own = open_text(os.path.join(os.fspath(output_dir), SUMMARY_FILE))
    out.write(json.dumps(summary.as_dict(), indent=2) + "\n")
    own.commit()

