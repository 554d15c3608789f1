"""`streamtag listen`: tag what an input device or a network stream hears, live."""
from __future__ import annotations

import click

from ..models.loader import LIVE_WINDOWS
from ..outputs.recording import FORMATS
from .common import CliReporter, exit_interrupted, user_errors
from .options import (example_options, labels_option, model_options, monitor_options, quiet_option, reconnect_option,
                      serve_option, target_options,
                      window_options)


@click.command()
@click.option("--input", "input_", default=None,
              help="Input device (index or name substring, see `streamtag devices`), a network stream URL "
                   "(http(s), rtsp), or - for audio piped to stdin.")
@reconnect_option
@model_options()
@window_options(*LIVE_WINDOWS)
@labels_option
@target_options(precision=False)
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after S seconds.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1), help="Tags per window.")
@click.option("--threshold", default=None, metavar="SCORES",
              help="Hide tags below this score; label=score pairs give classes their own (0.2,Dog=0.5).")
@click.option("--thresholds", "thresholds_path", type=click.Path(dir_okay=False), default=None,
              help="CSV of label,threshold rows: each class's own threshold (--threshold wins).")
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False), default=None,
              help="Output format (default: live view / text).")
@click.option("--output", "-o", default=None, help="Output file, or - for stdout.")
@click.option("--buffer-seconds", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Audio kept while inference catches up; older unread audio is lost (and counted).")
@monitor_options
@example_options
@click.option("--median", type=click.IntRange(min=1), default=3, show_default=True,
              help="Events (--store, --clips, --alert): median smoothing over windows (odd; 1 = none).")
@serve_option()
@quiet_option
def listen(input_, reconnect, model, window, hop, labels_path, target, duration, top_k, threshold, thresholds_path, fmt,
           output, buffer_seconds, monitor, examples, median, serve, quiet) -> None:
    """Tag what an input device (or a network stream) hears, live. Ctrl-C stops cleanly and flushes outputs."""
    from ..engines.live import ListenJob, run_listen
    with user_errors():
        job = ListenJob.create(input=input_, model=model, window=window, hop=hop, target=target, labels=labels_path,
                               duration=duration, top_k=top_k, threshold=threshold, thresholds=thresholds_path,
                               format=fmt, output=output, buffer_seconds=buffer_seconds, reconnect=reconnect,
                               monitor=monitor, median=median, examples=examples, serve=serve)
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
    if summary.monitor is not None and (not quiet or summary.dropped_alerts):
        click.echo(f"streamtag: {summary.monitor}", err=True)
    if summary.interrupted:
        exit_interrupted(summary.exit_code)
