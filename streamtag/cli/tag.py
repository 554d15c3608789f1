"""`streamtag tag`: tag files, folders, lists and URLs window by window."""
from __future__ import annotations

import click

from ..audio.clock import StartClock
from ..audio.inputs import InputOptions
from ..engines.job import DEFAULT_SHARD_WINDOWS, EngineOptions, TagJob
from ..engines.tag import run_tag_job
from ..models.loader import DEFAULT_WINDOWS
from ..outputs.recording import OutputOptions
from .common import CliReporter, exit_interrupted, user_errors
from .options import (RECONNECT, labels_option, model_options, option_group, quiet_option, target_options,
                      window_options)


def _outputs(formats, output, output_dir, top_k, events, include, exclude, threshold, thresholds, off_threshold,
             min_duration, max_gap, median, plot, frames) -> OutputOptions:
    return OutputOptions(formats=tuple(formats), output=output, output_dir=output_dir, top_k=top_k, events=events,
                         include=include, exclude=exclude, threshold=threshold, thresholds=thresholds,
                         off_threshold=off_threshold, min_duration_s=min_duration, max_gap_s=max_gap, median=median,
                         plot=plot, frames=frames)


output_options = option_group("outputs", _outputs, [
    (("--format", "formats"), dict(multiple=True, metavar="FMT", help=(
        "text, jsonl, csv, npz, audacity, raven; repeat or comma-separate for several (with --output-dir). "
        "Default: text on stdout, else from the output's extension."))),
    (("--output", "-o"), dict(default=None, help="Output file, or - for stdout.")),
    (("--output-dir",), dict(type=click.Path(file_okay=False), default=None, help="One output file per input.")),
    (("--top-k",), dict(default=5, show_default=True, type=click.IntRange(min=1), help="Tags per window.")),
    (("--events",), dict(is_flag=True, help="text/JSONL/CSV list detected events instead of windows.")),
    (("--include",), dict(default=None, metavar="NAMES",
                          help="Only these labels (display names or mids, comma-separated).")),
    (("--exclude",), dict(default=None, metavar="NAMES", help="Never these labels.")),
    (("--threshold",), dict(default=None, metavar="SCORES", help=(
        "Windows: hide tags below it. Events: the on-threshold (default 0.3). A score, label=score pairs or both: "
        "0.2,Dog=0.5,Speech=0.3."))),
    (("--thresholds",), dict(type=click.Path(dir_okay=False), default=None, help=(
        "CSV of label,threshold[,off_threshold] rows: each class's own threshold (--threshold wins)."))),
    (("--off-threshold",), dict(type=click.FloatRange(0, 1), default=None,
                                help="Events stay open down to this (default threshold/2).")),
    (("--min-duration",), dict(type=click.FloatRange(min=0), default=0.5, show_default=True,
                               help="Shortest event, seconds.")),
    (("--max-gap",), dict(type=click.FloatRange(min=0), default=1.0, show_default=True,
                          help="Merge events closer than this, seconds.")),
    (("--median",), dict(type=click.IntRange(min=1), default=3, show_default=True,
                         help="Median smoothing over windows (odd).")),
    (("--plot",), dict(type=click.Path(dir_okay=False), default=None, help=(
        "Heat map PNG of the top labels with events (one input; with --output-dir, one per input)."))),
    (("--frames",), dict(is_flag=True, help="NPZ also holds frame-level embeddings and their times (transformers).")),
])

engine_options = option_group("engine", lambda engine, address, shard_windows, workers: EngineOptions(
    engine=engine, address=address, shard_windows=shard_windows, workers=workers), [
    (("--engine",), dict(type=click.Choice(["local", "ray"], case_sensitive=False), default="local",
                         show_default=True,
                         help="ray: shard the inputs over a Ray cluster (needs --output-dir and streamtag[ray]).")),
    (("--address",), dict(default=None, help="Ray cluster: auto, ray://host:port (default: start a local Ray).")),
    (("--shard-windows",), dict(type=click.IntRange(min=1), default=DEFAULT_SHARD_WINDOWS, show_default=True,
                                help="Ray: windows per shard of a long file.")),
    (("--workers",), dict(type=click.IntRange(min=1), default=None,
                          help="Ray: model replicas (default: one per GPU, else one per CPU).")),
])

input_options = option_group("inputs", lambda stream_index, reconnect: InputOptions(stream_index, reconnect), [
    (("--stream", "stream_index"), dict(type=click.IntRange(min=0), default=None, metavar="N", help=(
        "Which audio stream of a container to tag (0 = the first; needs streamtag[ffmpeg])."))),
    RECONNECT,
])

clock_options = option_group("clock", StartClock.from_options, [
    (("--start-time",), dict(default=None, metavar="ISO8601", help=(
        "Wall-clock start of the recording (e.g. 2026-05-01T05:30:00Z): outputs get UTC times."))),
    (("--start-time-from",), dict(default=None, metavar="name:PATTERN|metadata", help=(
        "Each recording's start from its file name (name:%Y%m%d_%H%M%S, UTC unless %z) or its container's "
        "creation_time (metadata)."))),
])


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@model_options()
@window_options(*DEFAULT_WINDOWS)
@labels_option
@target_options()
@click.option("--batch-size", type=int, default=None, help="Windows per model call (default per device).")
@output_options
@engine_options
@input_options
@clock_options
@quiet_option
@click.option("--progress/--no-progress", default=None,
              help="Show the progress line and the summary (default: when stderr is a terminal, without --quiet).")
def tag(files, model, window, hop, labels_path, target, batch_size, outputs, engine, inputs, clock, quiet, progress) -> None:
    """Tag audio FILES (files, folders, .txt lists of paths, http(s)/rtsp URLs, or - for stdin) window by window.

    Writes the top tags per window, all scores (NPZ) or detected events.
    """
    ray = engine.engine == "ray"
    reporter = CliReporter(quiet, "[ray] " if ray else "", progress)
    with user_errors(at_once=not ray):
        job = TagJob.create(files, model=model, window=window, hop=hop, target=target, batch_size=batch_size,
                            labels=labels_path, outputs=outputs, engine=engine,
                            input_options=inputs, clock=clock)
        summary = run_tag_job(job, reporter)
    if summary.interrupted:
        exit_interrupted(summary.exit_code, at_once=not ray)
    if ray and (not quiet or summary.failed):
        click.echo(f"streamtag: [ray] {summary.completed} tagged, {len(summary.skipped)} already complete, "
                   f"{len(summary.failed)} failed of {summary.files} files; {summary.windows} windows in "
                   f"{summary.elapsed_s:.1f} s ({summary.windows_per_s:.1f} windows/s, {summary.workers} workers)",
                   err=True)
    elif summary.failed and summary.files > 1:
        click.echo(f"streamtag: {len(summary.failed)} of {summary.files} files failed: "
                   + ", ".join(f["path"] for f in summary.failed), err=True)
    if not ray and reporter.show_progress:
        dest = job.plan.output_dir or (job.plan.output if job.plan.output not in (None, "-") else "stdout")
        speed = f" ({summary.audio_s / summary.elapsed_s:.0f}x real time)" if summary.elapsed_s > 0 else ""
        skipped = f" ({len(summary.skipped)} already complete)" if summary.skipped else ""
        click.echo(f"streamtag: {summary.completed} of {summary.files} files{skipped}, {summary.windows} windows, "
                   f"{summary.audio_s:.1f} s of audio in {summary.elapsed_s:.1f} s{speed} -> {dest}", err=True)
    if summary.failed:
        raise click.exceptions.Exit(1)
