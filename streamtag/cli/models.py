"""`streamtag models` and `streamtag devices`: what can run, and what can be listened to."""
from __future__ import annotations

import json

import click

from ..errors import StreamtagError
from ..models import MODELS
from ..models.listing import model_rows, table_lines
from .common import fail


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.argument("pattern", required=False, default="*")
def models_cmd(as_json: bool, pattern: str) -> None:
    """List the registered models and whether each works offline (bundled or cached)."""
    rows = model_rows(pattern)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        raise fail(f"no model matches {pattern!r} ({len(MODELS)} registered)")
    for line in table_lines(rows):
        click.echo(line)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def devices(as_json: bool) -> None:
    """List audio input devices (for `streamtag listen --input`)."""
    from ..audio.microphone import input_devices
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
