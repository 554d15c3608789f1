"""`streamtag bench`: the pipeline against a naive EATagger-style loop, and the live latency, on this machine."""
from __future__ import annotations

import json

import click

from ..models.loader import DEFAULT_WINDOWS
from .common import user_errors
from .options import model_options, target_options, window_options


@click.command()
@model_options(head=False)
@window_options(*DEFAULT_WINDOWS, head=False)
@target_options(precision=False)
@click.option("--batch-size", type=int, default=None, help="Windows per model call (default per device).")
@click.option("--duration", default=600.0, show_default=True, type=float, help="Seconds of synthetic audio.")
@click.option("--file", "audio_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Benchmark this recording instead of synthetic audio.")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1, 50), help="Median over repeats.")
@click.option("--threads", type=int, default=None, help="torch threads in each side (default: torch's).")
@click.option("--live-seconds", default=20.0, show_default=True, type=float, help="Live simulation length.")
@click.option("--baseline/--no-baseline", default=True, help="Also run the naive per-window loop.")
@click.option("--live/--no-live", default=True, help="Also run the live real-time simulation.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def bench(model, window, hop, target, batch_size, duration, audio_file, repeats, threads, live_seconds, baseline, live,
          as_json) -> None:
    """Benchmark the pipeline against a naive EATagger-style loop, in process (the comparison with the official
    code is benchmarks/compare_official.py)."""
    from ..bench import benchmark
    with user_errors():
        report = benchmark(model, duration, window, hop, repeats, target, batch_size, audio_file, threads,
                           live_seconds, baseline, live)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    p = report["pipeline"]
    click.echo(f"{report['model']} ({report['weights']} weights, runtime {report['runtime']}), window {report['window_s']:g} s, "
               f"hop {report['hop_s']:g} s, "
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
