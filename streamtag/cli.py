"""The `streamtag` command line: tag files, list models."""
from __future__ import annotations

import json
import os
import sys
import time
import warnings

import click
import numpy as np
import torch

from . import __version__
from .audio.sources import FileSource
from .engines.archive import expand_inputs
from .errors import ConfigError, StreamtagError
from .models import MODELS, create_model, find_cached, list_models
from .outputs import EventSettings, NpzSink, TagFilter, open_text
from .outputs.recording import (EVENT_FORMATS, EXTENSIONS, FORMATS, OutputPlan, RecordingOutputs, recording_stems,
                                text_sink)
from .pipeline import Tagger, load_default_model
from .windows import WindowSpec

PROGRESS_MIN_S = 60.0  # show a progress bar for files at least this long (on a terminal)


def fail(message: str, code: int = 1) -> "click.exceptions.Exit":
    click.echo(f"streamtag: error: {message}", err=True)
    return click.exceptions.Exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtag")
def main() -> None:
    """Streaming sliding-window AudioSet tagging."""


def _formats(values: tuple[str, ...], output: str | None, output_dir: str | None) -> list[str]:
    """The requested formats (repeatable, or comma-separated); default from the output's extension."""
    fmts = [f.strip() for v in values for f in v.split(",") if f.strip()]
    for f in fmts:
        if f not in FORMATS + EVENT_FORMATS:
            raise fail(f"unknown format {f!r} (use {', '.join(FORMATS + EVENT_FORMATS)})")
    if fmts:
        return list(dict.fromkeys(fmts))
    if output and output != "-":
        for name, ext in sorted(EXTENSIONS.items(), key=lambda kv: -len(kv[1])):
            if output.endswith(ext):
                return [name]
        return ["jsonl"]
    return ["jsonl"] if output_dir else ["text"]


def _format_for(fmt: str | None, output: str | None, output_dir: str | None) -> str:
    return _formats((fmt,) if fmt else (), output, output_dir)[0]


def _model(name: str | None, weights: str | None, quiet: bool):
    """The named model, or the default one (saying on stderr when it falls back to the bundled model)."""
    if name is None and weights is None:
        model, notice = load_default_model()
        if notice and not quiet:
            click.echo(f"streamtag: {notice}", err=True)
        return model
    return create_model(name or "mn10_as", weights=weights)


def _tagger(model, quiet: bool, **options) -> Tagger:
    """A Tagger for `model`; its warnings (e.g. a window much shorter than the training inputs) go to stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tagger = Tagger(model, **options)
    if not quiet:
        for w in caught:
            click.echo(f"streamtag: warning: {w.message}", err=True)
    return tagger


def _check_scores_needed(tagger: Tagger, formats: list[str], as_events: bool, plot: str | None,
                         label_filter: str | None) -> None:
    """Embedding-only models (scores None) cannot feed outputs made of tags."""
    if tagger.model.has_scores:
        return
    wanted = [f for f in formats if f in ("csv",) + EVENT_FORMATS] + (["--events"] if as_events else []) \
        + (["--plot"] if plot else []) + (["--include/--exclude"] if label_filter else [])
    if wanted:
        raise ConfigError(f"{tagger.model_name} gives embeddings only (no AudioSet scores), so "
                          f"{', '.join(wanted)} cannot be written: use --format npz (text/jsonl list the windows)")


def _label_set(labels, names: str | None) -> list[int]:
    """Indices of comma-separated display names or mids; unknown names raise with close matches."""
    return [labels.index(n) for n in (names or "").split(",") if n.strip()]


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_name", default=None, metavar="NAME",
              help="Registry name (see `streamtag models`); a,b,c for an ensemble. Default: mn10_as, or the "
                   "bundled mn04_as offline.")
@click.option("--window", default=10.0, show_default=True, type=float, help="Window length in seconds.")
@click.option("--hop", default=2.5, show_default=True, type=float, help="Hop between window starts, seconds.")
@click.option("--weights", type=click.Path(), default=None, help="Checkpoint file to load instead of the official one.")
@click.option("--labels", "labels_path", type=click.Path(), default=None, help="AudioSet class_labels_indices.csv.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--batch-size", type=int, default=None, help="Windows per model call (default per device).")
@click.option("--format", "fmts", multiple=True, metavar="FMT",
              help="text, jsonl, csv, npz, audacity, raven; repeat or comma-separate for several (with "
                   "--output-dir). Default: text on stdout, else from the output's extension.")
@click.option("--output", "-o", default=None, help="Output file, or - for stdout.")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None, help="One output file per input.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1, 527), help="Tags per window.")
@click.option("--events", "as_events", is_flag=True, help="text/JSONL/CSV list detected events instead of windows.")
@click.option("--include", default=None, metavar="NAMES", help="Only these labels (display names or mids, comma-separated).")
@click.option("--exclude", default=None, metavar="NAMES", help="Never these labels.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Windows: hide tags below it. Events: the on-threshold (default 0.3).")
@click.option("--off-threshold", type=click.FloatRange(0, 1), default=None, help="Events stay open down to this (default threshold/2).")
@click.option("--min-duration", type=click.FloatRange(min=0), default=0.5, show_default=True, help="Shortest event, seconds.")
@click.option("--max-gap", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Merge events closer than this, seconds.")
@click.option("--median", type=click.IntRange(min=1), default=3, show_default=True, help="Median smoothing over windows (odd).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Heat map PNG of the top labels with events (one input; with --output-dir, one per input).")
@click.option("--frames", is_flag=True, help="NPZ also holds frame-level embeddings and their times (transformers).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: shard the inputs over a Ray cluster (needs --output-dir and streamtag[ray]).")
@click.option("--address", default=None, help="Ray cluster: auto, ray://host:port (default: start a local Ray).")
@click.option("--shard-windows", type=click.IntRange(min=1), default=256, show_default=True,
              help="Ray: windows per shard of a long file.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Ray: model replicas (default: one per GPU, else one per CPU).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notices.")
def tag(files, model_name, window, hop, weights, labels_path, device, batch_size, fmts, output, output_dir,
        top_k, as_events, include, exclude, threshold, off_threshold, min_duration, max_gap, median, plot_path,
        frames, engine, address, shard_windows, workers, quiet) -> None:
    """Tag audio FILES (files, folders, or .txt lists of paths) window by window.

    Writes the top tags per window, all scores (NPZ) or detected events.
    """
    files = tuple(expand_inputs(list(files)))
    if not files:
        raise fail("no audio files found in the inputs")
    if engine == "ray" and not output_dir:
        raise fail("--engine ray writes one set of files per input: give --output-dir DIR")
    formats = _formats(fmts, output, output_dir)
    if output and output_dir:
        raise fail("give --output or --output-dir, not both")
    if len(formats) > 1 and not output_dir:
        raise fail("several formats need --output-dir")
    if "npz" in formats and not output_dir and (not output or output == "-"):
        raise fail("npz is binary: give --output FILE.npz or --output-dir DIR")
    if not output_dir and len(files) > 1 and set(formats) & {"npz", "audacity", "raven"}:
        raise fail(f"{formats[0]} holds one recording: use --output-dir for several files")
    if plot_path and len(files) > 1 and not output_dir:
        raise fail("--plot draws one recording: use --output-dir for several files")
    if frames and "npz" not in formats:
        raise fail("--frames adds arrays to NPZ output: use --format npz")
    try:
        model = _model(model_name, weights, quiet)
        tagger = _tagger(model, quiet, window=window, hop=hop, device=device, batch_size=batch_size,
                         labels=labels_path, frames=frames)
        _check_scores_needed(tagger, formats, as_events, plot_path, include or exclude)
        included, excluded = _label_set(tagger.labels, include), set(_label_set(tagger.labels, exclude))
        allowed = [i for i in (included or range(len(tagger.labels))) if i not in excluded]
        on = 0.3 if threshold is None else threshold
        settings = EventSettings(on=on, off=on / 2 if off_threshold is None else off_threshold,
                                 min_duration_s=min_duration, max_gap_s=max_gap, median=median,
                                 labels=tuple(allowed))
    except (StreamtagError, ValueError) as e:
        raise fail(str(e)) from None
    plan = OutputPlan(tuple(formats), TagFilter(top_k, threshold or 0.0, None if len(allowed) == len(tagger.labels)
                                                else allowed), settings, as_events, output, output_dir, plot_path)
    shared_out, shared_file = (None, None)
    if not output_dir and formats[0] != "npz":
        try:
            shared_out, shared_file = open_text(output or "-")
        except OSError as e:
            raise fail(f"cannot write {output}: {e.strerror or e}") from None
    if engine == "ray":
        return _tag_on_ray(files, output_dir, tagger, plan, labels_path, address, shard_windows, device, batch_size,
                           frames, workers, quiet)
    failures: list[tuple[str, str]] = []
    interrupted = False
    try:
        for i, (path, stem) in enumerate(zip(files, recording_stems(list(files)))):
            try:
                _tag_recording(tagger, plan, path, stem, shared_out, i == 0, quiet)
            except StreamtagError as e:
                failures.append((path, str(e)))
                click.echo(f"streamtag: error: {e}", err=True)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if shared_file is not None:
            shared_file.commit()  # everything written so far is complete lines
        elif shared_out is not None:
            shared_out.flush()
    if interrupted:
        click.echo("streamtag: interrupted", err=True)
        raise click.exceptions.Exit(130)
    if failures:
        if len(files) > 1:
            click.echo(f"streamtag: {len(failures)} of {len(files)} files failed: "
                       + ", ".join(p for p, _ in failures), err=True)
        raise click.exceptions.Exit(1)


def _tag_on_ray(files, output_dir, tagger: Tagger, plan: OutputPlan, labels_path, address, shard_windows, device,
                batch_size, frames, workers, quiet) -> None:
    from .engines.ray_engine import print_progress, tag_archive
    w = tagger.window
    try:
        summary = tag_archive(list(files), output_dir, model=tagger.model, window=w.window_s, hop=w.hop_s, plan=plan,
                              labels=labels_path, address=address, shard_windows=shard_windows, device=device,
                              batch_size=batch_size, frames=frames, workers=workers,
                              progress=None if quiet else print_progress)
    except StreamtagError as e:
        raise fail(str(e)) from None
    if not quiet or summary.failed:
        click.echo(f"streamtag: [ray] {summary.completed} tagged, {len(summary.skipped)} already complete, "
                   f"{len(summary.failed)} failed of {summary.files} files; {summary.windows} windows in "
                   f"{summary.elapsed_s:.1f} s ({summary.windows_per_s:.1f} windows/s, {summary.workers} workers)",
                   err=True)
    for f in summary.failed:
        click.echo(f"streamtag: error: {f['error']}", err=True)
    if summary.failed:
        raise click.exceptions.Exit(1)


def _tag_recording(tagger: Tagger, plan: OutputPlan, path: str, stem: str, shared_out, first: bool,
                   quiet: bool) -> None:
    """Tag one file with the loaded model and write every planned output of it."""
    source = FileSource(path)
    outputs = RecordingOutputs(plan, tagger, path, stem, shared_out, first)
    subscribers: list = [outputs]
    bar = None
    if not quiet and sys.stderr.isatty() and source.duration_s >= PROGRESS_MIN_S:
        total = tagger.window.total(source.expected_samples(tagger.sample_rate))
        bar = click.progressbar(length=total, label=os.path.basename(path), file=sys.stderr)
        subscribers.append(lambda r: bar.update(1))
    try:
        for cb in subscribers:
            tagger.subscribe(cb)
        if bar is not None:
            bar.__enter__()
        stats = tagger.run(source)
        if stats.nonfinite_samples:  # a warning about the data, shown even with --quiet
            click.echo(f"streamtag: warning: {path}: {stats.nonfinite_samples} NaN/Inf samples were replaced by 0",
                       err=True)
    except BaseException:
        outputs.discard()
        raise
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
        for cb in subscribers:
            tagger.unsubscribe(cb)
    outputs.finish()


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
                     "file_name": spec.file_name, "url": spec.page or spec.url, "license": spec.license})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        raise fail(f"no model matches {pattern!r} ({len(MODELS)} registered)")
    width = max(len(r["name"]) for r in rows)
    click.echo(f"{'name':<{width}} {'family':<9} {'params':>7} {'emb':>5} {'rate':>6} {'mAP':>5} {'scores':<6} "
               f"{'offline':<8} license")
    for r in rows:
        params = f"{r['params_millions']:.2f}M" if r["params_millions"] else "-"
        click.echo(f"{r['name']:<{width}} {r['family']:<9} {params:>7} {r['embedding_dim']:>5} {r['sample_rate']:>6} "
                   f"{r['mAP'] if r['mAP'] else '-':>5} {'yes' if r['scores'] else '-':<6} {r['local']:<8} "
                   f"{r['license']}")




@main.command()
@click.option("--model", "model_name", default="mn10_as", show_default=True, help="Registry name.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Checkpoint (default: resolved as usual, else random weights: the speed is the same).")
@click.option("--duration", default=600.0, show_default=True, type=float, help="Seconds of synthetic audio.")
@click.option("--file", "audio_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Benchmark this recording instead of synthetic audio.")
@click.option("--window", default=10.0, show_default=True, type=float)
@click.option("--hop", default=2.5, show_default=True, type=float)
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1, 50), help="Median over repeats.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--batch-size", type=int, default=None)
@click.option("--threads", type=int, default=None, help="torch threads in each side (default: torch's).")
@click.option("--live-seconds", default=20.0, show_default=True, type=float, help="Live simulation length.")
@click.option("--baseline/--no-baseline", default=True, help="Also run the naive per-window loop.")
@click.option("--live/--no-live", default=True, help="Also run the live real-time simulation.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def bench(model_name, weights, duration, audio_file, window, hop, repeats, device, batch_size, threads,
          live_seconds, baseline, live, as_json) -> None:
    """Benchmark the pipeline against a naive EATagger-style loop in the same run."""
    from .bench import benchmark
    try:
        WindowSpec.from_seconds(window, hop, 32000)
        report = benchmark(model_name, duration, window, hop, repeats, device, batch_size, weights, audio_file,
                           threads, live_seconds, baseline, live)
    except (StreamtagError, RuntimeError) as e:
        raise fail(str(e).strip().splitlines()[-1]) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    p = report["pipeline"]
    click.echo(f"{report['model']} ({report['weights']} weights), window {window} s, hop {hop} s, "
               f"{report['audio_s']:.0f} s of audio, median of {repeats}")
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


class SlowedNetwork(torch.nn.Module):
    """Test hook (`listen --slow-model S`): sleeps S seconds per batch to force an overrun."""

    def __init__(self, inner: torch.nn.Module, seconds: float) -> None:
        super().__init__()
        self.inner, self.seconds = inner, seconds

    def forward(self, mel):
        time.sleep(self.seconds)
        return self.inner(mel)


@main.command()
@click.option("--input", "input_", default=None, help="Input device: index or name substring (see `streamtag devices`).")
@click.option("--device", default="auto", show_default=True, help="Compute device: auto, cpu or cuda.")
@click.option("--model", "model_name", default=None, metavar="NAME", help="Registry name (default: mn10_as, or bundled mn04_as).")
@click.option("--weights", type=click.Path(), default=None, help="Checkpoint file to load instead of the official one.")
@click.option("--labels", "labels_path", type=click.Path(), default=None, help="AudioSet class_labels_indices.csv.")
@click.option("--window", default=1.0, show_default=True, type=float, help="Window length in seconds.")
@click.option("--hop", default=0.5, show_default=True, type=float, help="Hop between windows in seconds.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after S seconds.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1, 527))
@click.option("--threshold", default=0.0, show_default=True, type=click.FloatRange(0, 1), help="Hide tags below this score.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Output format (default: live view / text).")
@click.option("--output", "-o", default=None, help="Output file, or - for stdout.")
@click.option("--buffer-seconds", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Audio kept while inference catches up; older unread audio is lost (and counted).")
@click.option("--quiet", "-q", is_flag=True, help="No notices or latency summary.")
@click.option("--slow-model", type=float, default=None, hidden=True)
def listen(input_, device, model_name, weights, labels_path, window, hop, duration, top_k, threshold, fmt, output,
           buffer_seconds, quiet, slow_model) -> None:
    """Tag what an input device hears, live. Ctrl-C stops cleanly and flushes outputs."""
    from .audio.microphone import MicrophoneSource
    from .models.factory import TaggingModel
    fmt = _format_for(fmt, output, None)
    if fmt == "npz" and (not output or output == "-"):
        raise fail("npz is binary: give --output FILE.npz")
    try:
        model = _model(model_name, weights, quiet)
        if slow_model:
            model = TaggingModel(model.spec, model.frontend, SlowedNetwork(model.network, slow_model), model.weights)
        tagger = _tagger(model, quiet, window=window, hop=hop, device=device, labels=labels_path,
                         ring_seconds=buffer_seconds, optimize=not slow_model)
        source = MicrophoneSource(input_, buffer_s=buffer_seconds)
    except StreamtagError as e:
        raise fail(str(e)) from None
    title = f"{source.device['name']} -> {tagger.model_name}"
    own = None
    if fmt == "npz":
        sink = NpzSink(output, tagger.labels, source=title, hop_s=tagger.window.hop_s)
    else:
        out, own = open_text(output or "-")
        if fmt == "text" and out is sys.stdout and sys.stdout.isatty():
            from .outputs import LiveView
            sink = LiveView(out, top_k, threshold, title)
        else:
            sink = text_sink(fmt, out, title, TagFilter(top_k, threshold), header=True)
    latencies: list[float] = []
    tagger.subscribe(sink)
    tagger.subscribe(lambda r: latencies.append(r.latency_s) if r.latency_s is not None else None)
    interrupted = False
    error = None
    try:
        tagger.warm_up()
        tagger.start(source)
        if not quiet:
            click.echo(f"streamtag: listening on {source.device['name']} ({source.sample_rate} Hz) with "
                       f"{tagger.model_name}, window {window} s, hop {hop} s", err=True)
        try:
            if not tagger.join(timeout=duration) if duration else not tagger.join():
                source.close()  # end of capture: the last windows are still published
                tagger.join()
        except KeyboardInterrupt:
            interrupted = True
            source.close()
            tagger.join(timeout=10)
    except StreamtagError as e:
        error = e
    finally:
        tagger.stop(wait=10.0)
        sink.close()
        if own is not None:
            own.commit()
    stats = tagger.stats
    if stats.lost_samples or stats.device_overflows:
        click.echo(f"streamtag: warning: lost {stats.lost_samples} samples ({stats.lost_samples / tagger.sample_rate:.2f} s) "
                   f"in {stats.lossy_windows} of {stats.windows} windows; device overflows: {stats.device_overflows}",
                   err=True)
    if latencies and not quiet:
        ms = np.percentile(np.asarray(latencies) * 1e3, [50, 95])
        click.echo(f"streamtag: latency p50 {ms[0]:.0f} ms, p95 {ms[1]:.0f} ms, max {max(latencies) * 1e3:.0f} ms "
                   f"over {len(latencies)} windows", err=True)
    if error is not None:
        raise fail(str(error))
    if interrupted:
        raise click.exceptions.Exit(130)


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
    try:
        ref, est = read_segments(reference), read_segments(predicted)
    except StreamtagError as e:
        raise fail(str(e)) from None
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
