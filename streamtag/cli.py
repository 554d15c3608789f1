"""The `streamtag` command line: option parsing, then one library call per command."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Iterator, NoReturn

import click

from . import __version__
from .engines.job import TagJob
from .engines.signals import exit_code, interrupts_from_signals
from .engines.tag import run_tag_job
from .errors import StreamtagError
from .models import BUNDLED_MODEL, DEFAULT_MODEL, MODELS, find_cached, list_models, streamtag_home
from .models.runtimes import RUNTIMES
from .outputs.recording import FORMATS
from .pipeline.export_runner import PRECISION_NAMES


def fail(message: str, code: int = 1) -> "click.exceptions.Exit":
    _release_closed_stdout()
    click.echo(f"streamtag: error: {message}", err=True)
    return click.exceptions.Exit(code)


def _release_closed_stdout() -> None:
    """If standard output's reader is gone (`| head`), point it at /dev/null so exiting does not fail again."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def exit_interrupted(code: int, at_once: bool = True) -> NoReturn:
    """Say so and leave with `code` (128 + the signal). Every output is committed or removed by now, so
    `at_once` skips the exit-time destructors of native libraries, which can abort the process
    ("terminate called without an active exception") after a termination signal."""
    click.echo("streamtag: interrupted", err=True)
    if not at_once:
        raise click.exceptions.Exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


@contextlib.contextmanager
def user_errors(at_once: bool = True) -> Iterator[None]:
    """Library errors, OS errors and interrupts (Ctrl-C, SIGTERM, SIGHUP) as one stderr line and an exit status
    (an interrupt exits at once unless `at_once` is False: Ray's driver shuts its cluster down at exit)."""
    try:
        with interrupts_from_signals():
            yield
    except StreamtagError as e:
        raise fail(str(e)) from None
    except BrokenPipeError:
        raise fail("cannot write standard output: its reader closed it (broken pipe)") from None
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise fail(f"{where}{e.strerror or e}") from None
    except MemoryError:
        raise fail("out of memory (try a shorter window or a smaller --batch-size)") from None
    except KeyboardInterrupt as e:
        exit_interrupted(exit_code(e), at_once)


class CliReporter:
    """Reports on stderr: notices unless --quiet, warnings and errors always; with `progress` (default: stderr is a
    terminal and not --quiet) a live line per file that printed results never break."""

    def __init__(self, quiet: bool, prefix: str = "", progress: bool | None = None) -> None:
        self.quiet, self.prefix = quiet, prefix
        self.show_progress = progress if progress is not None else (not quiet and sys.stderr.isatty())

    def _echo(self, line: str) -> None:
        if self.show_progress:
            from tqdm import tqdm
            with tqdm.external_write_mode(file=sys.stderr):
                click.echo(line, err=True)
        else:
            click.echo(line, err=True)

    def notice(self, message: str) -> None:
        if not self.quiet:
            self._echo(f"streamtag: {message}")

    def warning(self, message: str) -> None:
        self._echo(f"streamtag: warning: {message}")

    def error(self, message: str) -> None:
        self._echo(f"streamtag: error: {message}")

    def progress(self, line: str) -> None:
        if not self.quiet:
            self._echo(f"streamtag: {self.prefix}{line}")

    def progress_bar(self, label: str, duration_s: float | None, windows: int | None) -> "_Bar | None":
        return _Bar(label, duration_s, windows) if self.show_progress else None

    def text_output(self, stream):
        return _BarSafeStream(stream) if self.show_progress else stream


class _Bar:
    """A tqdm line on stderr: file, %, windows done, windows/s, ETA and times real time (a stream of unknown
    length: windows done and windows/s)."""

    def __init__(self, label: str, duration_s: float | None, windows: int | None) -> None:
        from tqdm import tqdm
        self.duration_s, self.t0 = duration_s, time.monotonic()
        try:
            width = os.get_terminal_size(sys.stderr.fileno()).columns
        except (OSError, ValueError):  # not a terminal (--progress)
            width = 0
        size = {} if width else {"ncols": 100, "nrows": 24}  # a terminal of unknown size would hide the line
        self.bar = tqdm(total=windows, desc=label, unit="win", file=sys.stderr, leave=False, mininterval=0.2,
                        dynamic_ncols=bool(width), **size)

    def update(self, n: int) -> None:
        self.bar.update(n)
        elapsed = time.monotonic() - self.t0
        if elapsed > 0 and self.bar.total:
            self.bar.set_postfix_str(f"{self.duration_s * self.bar.n / self.bar.total / elapsed:.0f}x real time",
                                     refresh=False)

    def close(self) -> None:
        self.bar.close()


class _BarSafeStream:
    """Standard output for result rows while a progress line is shown: each write clears and redraws the line."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        from tqdm import tqdm
        with tqdm.external_write_mode(file=self.stream):
            n = self.stream.write(text)
            self.stream.flush()
        return n

    def flush(self) -> None:
        self.stream.flush()


reconnect_option = click.option(  # tag and listen
    "--reconnect", type=click.IntRange(min=0), default=5, show_default=True, metavar="N",
    help="Network streams: reconnect attempts in a row after a drop (the missing time is a counted gap).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtag")
def main() -> None:
    """Streaming sliding-window AudioSet tagging."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_name", default=None, metavar="NAME",
              help="Registry name (see `streamtag models`); a,b,c for an ensemble. Default: mn10_as, or the "
                   "bundled mn04_as offline.")
@click.option("--window", default=None, type=float, help="Window length in seconds (default 10, or the head's).")
@click.option("--hop", default=None, type=float, help="Hop between window starts, seconds (default 2.5, or the head's).")
@click.option("--head", "head_path", type=click.Path(dir_okay=False), default=None,
              help="A head file from `streamtag train`: tag its classes (on its backbone, by default).")
@click.option("--head-mode", type=click.Choice(["replace", "append"], case_sensitive=False), default="replace",
              show_default=True, help="The head's classes instead of the model's, or after them.")
@click.option("--weights", type=click.Path(), default=None, help="Checkpoint file to load instead of the official one.")
@click.option("--labels", "labels_path", type=click.Path(), default=None, help="AudioSet class_labels_indices.csv.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--batch-size", type=int, default=None, help="Windows per model call (default per device).")
@click.option("--format", "fmts", multiple=True, metavar="FMT",
              help="text, jsonl, csv, npz, audacity, raven; repeat or comma-separate for several (with "
                   "--output-dir). Default: text on stdout, else from the output's extension.")
@click.option("--output", "-o", default=None, help="Output file, or - for stdout.")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None, help="One output file per input.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1), help="Tags per window.")
@click.option("--events", "as_events", is_flag=True, help="text/JSONL/CSV list detected events instead of windows.")
@click.option("--include", default=None, metavar="NAMES", help="Only these labels (display names or mids, comma-separated).")
@click.option("--exclude", default=None, metavar="NAMES", help="Never these labels.")
@click.option("--threshold", default=None, metavar="SCORES",
              help="Windows: hide tags below it. Events: the on-threshold (default 0.3). A score, label=score "
                   "pairs or both: 0.2,Dog=0.5,Speech=0.3.")
@click.option("--thresholds", "thresholds_path", type=click.Path(dir_okay=False), default=None,
              help="CSV of label,threshold[,off_threshold] rows: each class's own threshold (--threshold wins).")
@click.option("--off-threshold", type=click.FloatRange(0, 1), default=None, help="Events stay open down to this (default threshold/2).")
@click.option("--min-duration", type=click.FloatRange(min=0), default=0.5, show_default=True, help="Shortest event, seconds.")
@click.option("--max-gap", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Merge events closer than this, seconds.")
@click.option("--median", type=click.IntRange(min=1), default=3, show_default=True, help="Median smoothing over windows (odd).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Heat map PNG of the top labels with events (one input; with --output-dir, one per input).")
@click.option("--frames", is_flag=True, help="NPZ also holds frame-level embeddings and their times (transformers).")
@click.option("--engine", type=click.Choice(["local", "ray"], case_sensitive=False), default="local", show_default=True,
              help="ray: shard the inputs over a Ray cluster (needs --output-dir and streamtag[ray]).")
@click.option("--address", default=None, help="Ray cluster: auto, ray://host:port (default: start a local Ray).")
@click.option("--shard-windows", type=click.IntRange(min=1), default=256, show_default=True,
              help="Ray: windows per shard of a long file.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Ray: model replicas (default: one per GPU, else one per CPU).")
@click.option("--runtime", type=click.Choice(RUNTIMES, case_sensitive=False), default="auto", show_default=True,
              help="What runs the network on CPU: auto (OpenVINO for MobileNets when installed), torch, openvino.")
@click.option("--precision", type=click.Choice(PRECISION_NAMES, case_sensitive=False), default="fp32", show_default=True,
              help="fp32 (exact); bf16 autocast (CPU with bf16 units, or CUDA; scores move, see README); fp16 (CUDA).")
@click.option("--stream", "stream_index", type=click.IntRange(min=0), default=None, metavar="N",
              help="Which audio stream of a container to tag (0 = the first; needs streamtag[ffmpeg]).")
@reconnect_option
@click.option("--start-time", default=None, metavar="ISO8601",
              help="Wall-clock start of the recording (e.g. 2026-05-01T05:30:00Z): outputs get UTC times.")
@click.option("--start-time-from", default=None, metavar="name:PATTERN|metadata",
              help="Each recording's start from its file name (name:%Y%m%d_%H%M%S, UTC unless %z) or its "
                   "container's creation_time (metadata).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line, summary or notices.")
@click.option("--progress/--no-progress", default=None,
              help="Show the progress line and the summary (default: when stderr is a terminal, without --quiet).")
def tag(files, model_name, window, hop, head_path, head_mode, weights, labels_path, device, batch_size, fmts, output,
        output_dir, top_k, as_events, include, exclude, threshold, thresholds_path, off_threshold, min_duration, max_gap, median,
        plot_path, frames, engine, address, shard_windows, workers, runtime, precision, stream_index, reconnect,
        start_time, start_time_from, quiet, progress) -> None:
    """Tag audio FILES (files, folders, .txt lists of paths, http(s)/rtsp URLs, or - for stdin) window by window.

    Writes the top tags per window, all scores (NPZ) or detected events.
    """
    reporter = CliReporter(quiet, "[ray] " if engine == "ray" else "", progress)
    with user_errors(at_once=engine != "ray"):
        job = TagJob.from_options(
            files, model=model_name, weights=weights, window=window, hop=hop, head=head_path, head_mode=head_mode,
            device=device, batch_size=batch_size,
            labels=labels_path, formats=fmts, output=output, output_dir=output_dir, top_k=top_k, events=as_events,
            include=include, exclude=exclude, threshold=threshold, thresholds=thresholds_path,
            off_threshold=off_threshold,
            min_duration_s=min_duration, max_gap_s=max_gap, median=median, plot=plot_path, frames=frames,
            engine=engine, address=address, shard_windows=shard_windows, workers=workers, runtime=runtime,
            precision=precision, stream=stream_index, reconnect=reconnect, start_time=start_time,
            start_time_from=start_time_from)
        summary = run_tag_job(job, reporter)
    if summary.interrupted:
        exit_interrupted(summary.exit_code, at_once=engine != "ray")
    if engine == "ray" and (not quiet or summary.failed):
        click.echo(f"streamtag: [ray] {summary.completed} tagged, {len(summary.skipped)} already complete, "
                   f"{len(summary.failed)} failed of {summary.files} files; {summary.windows} windows in "
                   f"{summary.elapsed_s:.1f} s ({summary.windows_per_s:.1f} windows/s, {summary.workers} workers)",
                   err=True)
    elif summary.failed and summary.files > 1:
        click.echo(f"streamtag: {len(summary.failed)} of {summary.files} files failed: "
                   + ", ".join(f["path"] for f in summary.failed), err=True)
    if engine == "local" and reporter.show_progress:
        dest = job.plan.output_dir or (job.plan.output if job.plan.output not in (None, "-") else "stdout")
        speed = f" ({summary.audio_s / summary.elapsed_s:.0f}x real time)" if summary.elapsed_s > 0 else ""
        skipped = f" ({len(summary.skipped)} already complete)" if summary.skipped else ""
        click.echo(f"streamtag: {summary.completed} of {summary.files} files{skipped}, {summary.windows} windows, "
                   f"{summary.audio_s:.1f} s of audio in {summary.elapsed_s:.1f} s{speed} -> {dest}", err=True)
    if summary.failed:
        raise click.exceptions.Exit(1)


@main.command("models")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.argument("pattern", required=False, default="*")
def models_cmd(as_json: bool, pattern: str) -> None:
    """List the registered models and whether each works offline (bundled or cached)."""
    rows = []
    for spec in list_models(pattern):
        try:
            found = find_cached(spec)
            local = found.origin if found else "-"
        except StreamtagError:
            local = "corrupt"
        rows.append({"name": spec.name, "family": spec.family, "params_millions": spec.params_millions,
                     "embedding_dim": spec.embedding_dim, "sample_rate": spec.sample_rate, "mAP": spec.mAP,
                     "scores": spec.has_scores, "frame_dim": spec.frame_dim, "local": local,
                     "file_name": spec.file_name, "url": spec.page or spec.url, "license": spec.license,
                     "default": spec.name == DEFAULT_MODEL, "bundled": spec.name == BUNDLED_MODEL})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        raise fail(f"no model matches {pattern!r} ({len(MODELS)} registered)")
    width = max(len(r["name"]) for r in rows)
    click.echo(f"{'name':<{width}} {'family':<9} {'params':>7} {'emb':>5} {'rate':>6} {'mAP':>5} {'scores':<6} "
               f"{'offline':<8} license")
    width += 2  # room for the default's mark
    for r in rows:
        params = f"{r['params_millions']:.2f}M" if r["params_millions"] else "-"
        name = r["name"] + (" *" if r["default"] else "")
        click.echo(f"{name:<{width}} {r['family']:<9} {params:>7} {r['embedding_dim']:>5} {r['sample_rate']:>6} "
                   f"{r['mAP'] if r['mAP'] else '-':>5} {'yes' if r['scores'] else '-':<6} {r['local']:<8} "
                   f"{r['license']}")
    if any(r["default"] for r in rows):
        click.echo(f"* the default model (without --model); {BUNDLED_MODEL} is bundled and used while it is not here")
    missing = [r for r in rows if r["local"] == "-"]
    if 0 < len(missing) <= 3:
        for r in missing:
            click.echo(f"to use {r['name']} offline: download {r['url']} and save it as {streamtag_home() / r['file_name']}")




@main.command()
@click.option("--model", "model_name", default=None,
              help=f"Registry name. Default: {DEFAULT_MODEL} with --weights, else the bundled {BUNDLED_MODEL} "
                   "(real weights, so the score comparison means something).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Checkpoint (default: resolved as usual, else random weights: the speed is the same).")
@click.option("--duration", default=600.0, show_default=True, type=float, help="Seconds of synthetic audio.")
@click.option("--file", "audio_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Benchmark this recording instead of synthetic audio.")
@click.option("--window", default=10.0, show_default=True, type=float)
@click.option("--hop", default=2.5, show_default=True, type=float)
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1, 50), help="Median over repeats.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda (as `tag`).")
@click.option("--batch-size", type=int, default=None)
@click.option("--threads", type=int, default=None, help="torch threads in each side (default: torch's).")
@click.option("--live-seconds", default=20.0, show_default=True, type=float, help="Live simulation length.")
@click.option("--baseline/--no-baseline", default=True, help="Also run the naive per-window loop.")
@click.option("--live/--no-live", default=True, help="Also run the live real-time simulation.")
@click.option("--runtime", type=click.Choice(RUNTIMES, case_sensitive=False), default="auto", show_default=True, help="streamtag's CPU runtime.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def bench(model_name, weights, duration, audio_file, window, hop, repeats, device, batch_size, threads,
          live_seconds, baseline, live, runtime, as_json) -> None:
    """Benchmark streamtag against a naive EATagger-style loop (the official code: benchmarks/compare_official.py)."""
    from .bench import benchmark
    with user_errors():
        report = benchmark(model_name, duration, window, hop, repeats, device, batch_size, weights, audio_file,
                           threads, live_seconds, baseline, live, runtime)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    p = report["pipeline"]
    click.echo(f"{report['model']} ({report['weights']} weights, runtime {runtime}), window {window} s, hop {hop} s, "
               f"{report['audio_s']:.0f} s of audio, median of {repeats} ({report['baseline_kind']})")
    click.echo(f"  streamtag: {p['windows_per_s']:8.1f} windows/s  {p['realtime_factor']:7.1f}x real time  "
               f"peak RSS {p['peak_rss_mb']:.0f} MB")
    if "baseline" in report:
        b = report["baseline"]
        click.echo(f"  baseline:  {b['windows_per_s']:8.1f} windows/s  {b['realtime_factor']:7.1f}x real time  "
                   f"peak RSS {b['peak_rss_mb']:.0f} MB")
        click.echo(f"  speed-up {report['speedup']:.2f}x, max score difference {report['max_abs_score_diff']:.2e}")
    if "live" in report:
        lv = report["live"]
        click.echo(f"  live: p50 {lv['latency_ms_p50']:.1f} ms, p95 {lv['latency_ms_p95']:.1f} ms, "
                   f"max {lv['latency_ms_max']:.1f} ms, lost samples {lv['lost_samples']}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def devices(as_json: bool) -> None:
    """List audio input devices (for `streamtag listen --input`)."""
    from .audio.microphone import input_devices
    try:
        rows = input_devices()
    except StreamtagError as e:
        raise fail(str(e)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'index':>5}  {'name':<40} {'channels':>8} {'rate':>8}  host API")
    for d in rows:
        click.echo(f"{d['index']:>5}  {d['name'][:40]:<40} {d['channels']:>8} {d['default_samplerate']:>8.0f}  {d['hostapi']}")


@main.command()
@click.option("--input", "input_", default=None,
              help="Input device (index or name substring, see `streamtag devices`), a network stream URL "
                   "(http(s), rtsp), or - for audio piped to stdin.")
@reconnect_option
@click.option("--device", default="auto", show_default=True, help="Compute device: auto, cpu or cuda.")
@click.option("--model", "model_name", default=None, metavar="NAME", help="Registry name (default: mn10_as, or bundled mn04_as).")
@click.option("--weights", type=click.Path(), default=None, help="Checkpoint file to load instead of the official one.")
@click.option("--labels", "labels_path", type=click.Path(), default=None, help="AudioSet class_labels_indices.csv.")
@click.option("--window", default=None, type=float, help="Window length in seconds (default 1, or the head's).")
@click.option("--hop", default=None, type=float, help="Hop between windows in seconds (default 0.5, or the head's).")
@click.option("--head", "head_path", type=click.Path(dir_okay=False), default=None,
              help="A head file from `streamtag train`: tag its classes live.")
@click.option("--head-mode", type=click.Choice(["replace", "append"], case_sensitive=False), default="replace",
              show_default=True, help="The head's classes instead of the model's, or after them.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after S seconds.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--threshold", default=None, metavar="SCORES",
              help="Hide tags below this score; label=score pairs give classes their own (0.2,Dog=0.5).")
@click.option("--thresholds", "thresholds_path", type=click.Path(dir_okay=False), default=None,
              help="CSV of label,threshold rows: each class's own threshold (--threshold wins).")
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False), default=None, help="Output format (default: live view / text).")
@click.option("--output", "-o", default=None, help="Output file, or - for stdout.")
@click.option("--buffer-seconds", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Audio kept while inference catches up; older unread audio is lost (and counted).")
@click.option("--runtime", type=click.Choice(RUNTIMES, case_sensitive=False), default="auto", show_default=True,
              help="What runs the network on CPU: auto, torch, openvino.")
@click.option("--quiet", "-q", is_flag=True, help="No notices or latency summary.")
def listen(input_, reconnect, device, model_name, weights, labels_path, window, hop, head_path, head_mode, duration,
           top_k, threshold, thresholds_path, fmt, output, buffer_seconds, runtime, quiet) -> None:
    """Tag what an input device (or a network stream) hears, live. Ctrl-C stops cleanly and flushes outputs."""
    from .engines.live import ListenJob, run_listen
    with user_errors():
        job = ListenJob.from_options(input=input_, model=model_name, weights=weights, labels=labels_path,
                                     window=window, hop=hop, device=device, duration=duration, top_k=top_k,
                                     threshold=threshold, thresholds=thresholds_path, format=fmt, output=output,
                                     buffer_seconds=buffer_seconds, runtime=runtime, head=head_path,
                                     head_mode=head_mode, reconnect=reconnect)
        summary = run_listen(job, CliReporter(quiet))
    stats = summary.stats
    if stats.lost_samples or stats.device_overflows:
        click.echo(f"streamtag: warning: lost {stats.lost_samples} samples ({stats.lost_samples / summary.sample_rate:.2f} s) "
                   f"in {stats.lossy_windows} of {stats.windows} windows; device overflows: {stats.device_overflows}",
                   err=True)
    latency = summary.latency_ms()
    if latency and not quiet:
        click.echo(f"streamtag: latency p50 {latency[0]:.0f} ms, p95 {latency[1]:.0f} ms, max {latency[2]:.0f} ms "
                   f"over {len(summary.latencies_s)} windows", err=True)
    if summary.interrupted:
        exit_interrupted(summary.exit_code)


@main.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="The head file to write (.pt).")
@click.option("--annotations", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Raven table, Audacity track, streamtag events, or CSV file,onset,offset,label (repeatable); "
                   "without it, DATA are folders of class folders.")
@click.option("--model", "model_name", default=None, metavar="NAME", help="Backbone (default: mn10_as, or the "
              "bundled mn04_as offline).")
@click.option("--weights", type=click.Path(), default=None, help="Backbone checkpoint instead of the official one.")
@click.option("--window", default=1.0, show_default=True, type=float, help="Window length in seconds.")
@click.option("--hop", default=0.5, show_default=True, type=float, help="Hop between windows in seconds.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda (for the embeddings).")
@click.option("--hidden", default=0, show_default=True, type=click.IntRange(min=0),
              help="Width of one hidden layer (0: a linear head).")
@click.option("--epochs", default=300, show_default=True, type=click.IntRange(min=1))
@click.option("--patience", default=20, show_default=True, type=click.IntRange(min=1),
              help="Stop after this many epochs without a better validation loss.")
@click.option("--learning-rate", default=1e-3, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int, help="Same data and seed: the same head.")
@click.option("--val-share", default=0.25, show_default=True, type=float, help="Share of recordings for validation.")
@click.option("--min-overlap", default=0.5, show_default=True, type=float,
              help="Annotations: a window is positive when it overlaps a segment by this share of the shorter.")
@click.option("--target-precision", default=None, type=float,
              help="Thresholds: the lowest reaching this validation precision (default: the best F1).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Validation precision-recall curves (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No notices or progress.")
def train(data, output, annotations, model_name, weights, window, hop, device, hidden, epochs, patience,
          learning_rate, seed, val_share, min_overlap, target_precision, plot_path, as_json, quiet) -> None:
    """Train a classifier head for your own classes on a backbone's window embeddings.

    DATA: folders of class folders (DATA/<class>/*.wav; "a,b" for several classes; _background or
    _negative for none), or recordings with --annotations.
    """
    from .engines.train import TrainJob, report_path, run_train_job
    with user_errors():
        job = TrainJob.from_options(
            data, output=output, annotations=annotations, model=model_name, weights=weights, window=window, hop=hop,
            device=device, hidden=hidden, epochs=epochs, patience=patience, learning_rate=learning_rate, seed=seed,
            val_share=val_share, min_overlap=min_overlap, target_precision=target_precision, plot=plot_path)
        report = run_train_job(job, CliReporter(quiet))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    click.echo(f"{'class':<24} {'P':>5} {'R':>5} {'F1':>5} {'AP':>5} {'thresh':>6} {'windows':>8} {'recordings':>10}")
    for c in report.classes:
        v, n = report.validation[c], report.counts[c]
        click.echo(f"{c[:24]:<24} {v['precision']:>5.2f} {v['recall']:>5.2f} {v['f1']:>5.2f} "
                   f"{v['average_precision']:>5.2f} {v['threshold']:>6.3f} "
                   f"{n['train_windows']:>4}/{n['validation_windows']:<3} "
                   f"{n['train_recordings']:>5}/{n['validation_recordings']:<4}")
    click.echo(f"(validation on {len(report.validation_recordings)} held-out recordings; windows and recordings "
               f"train/validation; {report.epochs} epochs)")
    click.echo(f"head: {report.head}  report: {report_path(report.head)}")


@main.command("eval")
@click.argument("predicted", type=click.Path(exists=True, dir_okay=False))
@click.option("--reference", "-r", required=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV/TSV with onset, offset and label columns (or an Audacity label file).")
@click.option("--collar", default=0.5, show_default=True, type=click.FloatRange(min=0), help="Onset collar, seconds.")
@click.option("--onsets-only", is_flag=True, help="Ignore offsets when matching.")
@click.option("--all-labels", is_flag=True, help="Also count predicted labels absent from the reference as false positives.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate(predicted, reference, collar, onsets_only, all_labels, as_json) -> None:
    """Event-based precision, recall and F1 of PREDICTED events (streamtag events JSONL/CSV, Audacity or
    Raven files) against a reference list, per label and overall."""
    from .outputs.evaluation import event_scores, overall, read_segments
    with user_errors():
        ref, est = read_segments(reference), read_segments(predicted)
        per = event_scores(ref, est, collar, offsets=not onsets_only, only_reference_labels=not all_labels)
    tot = overall(per)
    rows = {k: {"tp": v.tp, "fp": v.fp, "fn": v.fn, "precision": v.precision, "recall": v.recall, "f1": v.f1}
            for k, v in [*per.items(), ("overall", tot)]}
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'label':<32} {'TP':>4} {'FP':>4} {'FN':>4} {'P':>6} {'R':>6} {'F1':>6}")
    for k, v in rows.items():
        click.echo(f"{k[:32]:<32} {v['tp']:>4} {v['fp']:>4} {v['fn']:>4} {v['precision']:>6.2f} {v['recall']:>6.2f} "
                   f"{v['f1']:>6.2f}")
