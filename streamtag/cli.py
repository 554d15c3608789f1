"""The `streamtag` command line: tag files, list models."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click
import numpy as np
import torch

from . import __version__
from .audio.sources import FileSource
from .errors import StreamtagError
from .models import MODELS, create_model, find_cached, list_models
from .outputs import CsvSink, JsonlSink, NpzSink, TextSink, open_text
from .pipeline import Tagger, load_default_model
from .windows import WindowSpec

FORMATS = ("text", "jsonl", "csv", "npz")
EXTENSIONS = {"jsonl": ".jsonl", "csv": ".csv", "npz": ".npz", "text": ".txt"}
PROGRESS_MIN_S = 60.0  # show a progress bar for files at least this long (on a terminal)


def fail(message: str, code: int = 1) -> "click.exceptions.Exit":
    click.echo(f"streamtag: error: {message}", err=True)
    return click.exceptions.Exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtag")
def main() -> None:
    """Streaming sliding-window AudioSet tagging."""


def _format_for(fmt: str | None, output: str | None, output_dir: str | None) -> str:
    if fmt:
        return fmt
    if output and output != "-":
        for name, ext in EXTENSIONS.items():
            if output.endswith(ext):
                return name
        return "jsonl"
    return "jsonl" if output_dir else "text"


def _stems(files: tuple[str, ...]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for f in files:
        stem = Path(f).stem
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        out.append(stem if n == 0 else f"{stem}-{n}")
    return out


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_name", default=None, metavar="NAME",
              help="Registry name (see `streamtag models`). Default: mn10_as, or the bundled mn04_as offline.")
@click.option("--window", default=10.0, show_default=True, type=float, help="Window length in seconds.")
@click.option("--hop", default=2.5, show_default=True, type=float, help="Hop between window starts, seconds.")
@click.option("--weights", type=click.Path(), default=None, help="Checkpoint file to load instead of the official one.")
@click.option("--labels", "labels_path", type=click.Path(), default=None, help="AudioSet class_labels_indices.csv.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--batch-size", type=int, default=None, help="Windows per model call (default per device).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format. Default: text on stdout, else from the output's extension.")
@click.option("--output", "-o", default=None, help="Output file, or - for stdout.")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None, help="One output file per input.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1, 527), help="Tags per window.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notices.")
def tag(files, model_name, window, hop, weights, labels_path, device, batch_size, fmt, output, output_dir,
        top_k, quiet) -> None:
    """Tag audio FILES window by window and write the top tags (or all scores as NPZ)."""
    fmt = _format_for(fmt, output, output_dir)
    if output and output_dir:
        raise fail("give --output or --output-dir, not both")
    if fmt == "npz" and not output_dir and (not output or output == "-"):
        raise fail("npz is binary: give --output FILE.npz or --output-dir DIR")
    if fmt == "npz" and output and len(files) > 1:
        raise fail("an npz file holds one recording: use --output-dir for several files")
    try:
        if model_name is None and weights is None:
            model, notice = load_default_model()
            if notice and not quiet:
                click.echo(f"streamtag: {notice}", err=True)
        else:
            model = create_model(model_name or "mn10_as", weights=weights)
        tagger = Tagger(model, window=window, hop=hop, device=device, batch_size=batch_size, labels=labels_path)
    except StreamtagError as e:
        raise fail(str(e)) from None

    shared_out, shared_file = (None, None)
    if fmt != "npz" and not output_dir:
        try:
            shared_out, shared_file = open_text(output or "-")
        except OSError as e:
            raise fail(f"cannot write {output}: {e.strerror or e}") from None
    failures: list[tuple[str, str]] = []
    interrupted = False
    try:
        for i, (path, stem) in enumerate(zip(files, _stems(files))):
            try:
                _tag_one(tagger, path, stem, fmt, top_k, shared_out, output, output_dir, first=(i == 0),
                         quiet=quiet)
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


def _tag_one(tagger: Tagger, path: str, stem: str, fmt: str, top_k: int, shared_out, output, output_dir,
             first: bool, quiet: bool) -> None:
    source = FileSource(path)
    own = None
    if output_dir:
        dest = Path(output_dir) / (stem + EXTENSIONS[fmt])
        if fmt == "npz":
            sink = NpzSink(dest, tagger.labels, source=path, hop_s=tagger.window.hop_s)
        else:
            out, own = open_text(dest)
            sink = _text_sink(fmt, out, path, top_k, header=True)
    elif fmt == "npz":
        sink = NpzSink(output, tagger.labels, source=path, hop_s=tagger.window.hop_s)
    else:
        sink = _text_sink(fmt, shared_out, path, top_k, header=first)
    subscribers = [sink]
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
        tagger.run(source)
        sink.close()
        if own is not None:
            own.commit()
    except BaseException:
        if own is not None:
            own.discard()
        raise
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
        for cb in subscribers:
            tagger.unsubscribe(cb)


def _text_sink(fmt: str, out, path: str, top_k: int, header: bool):
    """The JSONL, CSV or text sink writing to `out`."""
    if fmt == "jsonl":
        return JsonlSink(out, path, top_k)
    if fmt == "csv":
        return CsvSink(out, path, top_k, header=header)
    return TextSink(out, path, top_k)


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
                     "local": local, "file_name": spec.file_name, "url": spec.url, "license": spec.license})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        raise fail(f"no model matches {pattern!r} ({len(MODELS)} registered)")
    click.echo(f"{'name':<20} {'family':<6} {'params':>7} {'emb':>5} {'rate':>6} {'mAP':>5}  {'offline':<8} license")
    for r in rows:
        params = f"{r['params_millions']:.2f}M" if r["params_millions"] else "-"
        click.echo(f"{r['name']:<20} {r['family']:<6} {params:>7} {r['embedding_dim']:>5} {r['sample_rate']:>6} "
                   f"{r['mAP'] if r['mAP'] else '-':>5}  {r['local']:<8} {r['license']}")




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
        if model_name is None and weights is None:
            model, notice = load_default_model()
            if notice and not quiet:
                click.echo(f"streamtag: {notice}", err=True)
        else:
            model = create_model(model_name or "mn10_as", weights=weights)
        if slow_model:
            model = TaggingModel(model.spec, model.frontend, SlowedNetwork(model.network, slow_model), model.weights)
        tagger = Tagger(model, window=window, hop=hop, device=device, labels=labels_path,
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
        elif fmt == "text":
            sink = TextSink(out, title, top_k, threshold)
        else:
            sink = _text_sink(fmt, out, title, top_k, header=True)
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
        tagger.stop()
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
