"""`streamtag eval`: event-based precision, recall and F1 against a reference list."""
from __future__ import annotations

import json

import click

from .common import user_errors


@click.command("eval")
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
    from ..outputs.evaluation import event_scores, overall, read_segments
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
