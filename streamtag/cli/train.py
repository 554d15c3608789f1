"""`streamtag train`: a classifier head for your own classes on a backbone's window embeddings."""
from __future__ import annotations

import json

import click

from ..models.loader import LIVE_WINDOWS
from .common import CliReporter, user_errors
from .options import model_options, quiet_option, target_options, window_options


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="The head file to write (.pt).")
@click.option("--annotations", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Raven table, Audacity track, streamtag events, or CSV file,onset,offset,label (repeatable); "
                   "without it, DATA are folders of class folders.")
@model_options(head=False)
@window_options(*LIVE_WINDOWS, head=False)
@target_options(precision=False)
@click.option("--hidden", default=0, show_default=True, type=click.IntRange(min=0),
              help="Width of one hidden layer (0: a linear head).")
@click.option("--epochs", default=300, show_default=True, type=click.IntRange(min=1),
              help="Most passes over the training windows (early stopping usually ends sooner).")
@click.option("--patience", default=20, show_default=True, type=click.IntRange(min=1),
              help="Stop after this many epochs without a better validation loss.")
@click.option("--learning-rate", default=1e-3, show_default=True, type=float, help="Adam's learning rate.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same data and seed: the same head.")
@click.option("--val-share", default=0.25, show_default=True, type=float,
              help="Share held out for validation: whole recordings, or for a class with one recording the last "
                   "part of it (a window's gap apart). 0: no validation, thresholds 0.5 (reported as not validated).")
@click.option("--min-overlap", default=0.5, show_default=True, type=float,
              help="Annotations: a window is positive when it overlaps a segment by this share of the shorter.")
@click.option("--target-precision", default=None, type=float,
              help="Thresholds: the lowest reaching this validation precision (default: the best F1).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Validation precision-recall curves (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@quiet_option
def train(data, output, annotations, model, window, hop, target, hidden, epochs, patience,
          learning_rate, seed, val_share, min_overlap, target_precision, plot_path, as_json, quiet) -> None:
    """Train a classifier head for your own classes on a backbone's window embeddings.

    DATA: folders of class folders (DATA/<class>/*.wav; "a,b" for several classes; _background or
    _negative for none), or recordings with --annotations.
    """
    from ..engines.train import TrainJob, report_path, run_train_job
    with user_errors():
        job = TrainJob.from_options(
            data, output=output, annotations=annotations, model=model, window=window, hop=hop,
            target=target, hidden=hidden, epochs=epochs, patience=patience, learning_rate=learning_rate, seed=seed,
            val_share=val_share, min_overlap=min_overlap, target_precision=target_precision, plot=plot_path)
        report = run_train_job(job, CliReporter(quiet))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    if not report.validated:
        click.echo(f"not validated (--val-share 0): thresholds {report.threshold_rule}")
        for c in report.classes:
            n = report.counts[c]
            click.echo(f"{c[:24]:<24} threshold {report.thresholds[c]:.3f}  {n['train_windows']} windows in "
                       f"{n['train_recordings']} recordings")
        click.echo(f"head: {report.head}  report: {report_path(report.head)}")
        return
    click.echo(f"{'class':<24} {'P':>5} {'R':>5} {'F1':>5} {'AP':>5} {'thresh':>6} {'windows':>8} {'recordings':>10}")
    for c in report.classes:
        v, n = report.validation[c], report.counts[c]
        click.echo(f"{c[:24]:<24} {v['precision']:>5.2f} {v['recall']:>5.2f} {v['f1']:>5.2f} "
                   f"{v['average_precision']:>5.2f} {v['threshold']:>6.3f} "
                   f"{n['train_windows']:>4}/{n['validation_windows']:<3} "
                   f"{n['train_recordings']:>5}/{n['validation_recordings']:<4}")
    split = "".join(f"; {c} validated on {v['validation_s'][0]:g}-{v['validation_s'][1]:g} s of its only recording"
                    for c, v in report.time_split.items())
    click.echo(f"(validation on {len(report.validation_recordings)} held-out recordings{split}; windows and "
               f"recordings train/validation; {report.epochs} epochs)")
    click.echo(f"head: {report.head}  report: {report_path(report.head)}")
