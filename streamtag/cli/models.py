"""`streamtag models` and `streamtag devices`: what can run, and what can be listened to."""
from __future__ import annotations

import json

import click

from ..errors import StreamtagError
from ..models import BUNDLED_MODEL, DEFAULT_MODEL, MODELS, find_cached, list_models, streamtag_home
from .common import fail


@click.command("models")
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
