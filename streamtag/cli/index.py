"""`streamtag index` and `streamtag search`: an embeddings index of recordings, and search by example."""
from __future__ import annotations

import click

from ..engines.search import INDEX_WINDOWS, SEARCH_FORMATS
from .common import CliReporter, user_errors
from .options import model_options, quiet_option, target_options, window_options


@click.command("index")
@click.argument("data", nargs=-1, required=True)
@click.option("--index", "folder", required=True, type=click.Path(file_okay=False),
              help="The index folder (made if new; one backbone and window per folder).")
@model_options(head=False)
@window_options(*INDEX_WINDOWS, head=False)
@target_options(precision=False)
@quiet_option
def index_cmd(data, folder, model, window, hop, target, quiet) -> None:
    """Embed every window of DATA (files, folders, list files, URLs) into an index for `streamtag search`.

    Incremental: files already indexed are skipped, a changed or unfinished one is indexed again.
    """
    from ..engines.search import IndexJob, run_index_job
    with user_errors():
        win, hop_s = model.windows(window, hop, INDEX_WINDOWS)
        run_index_job(IndexJob(tuple(data), folder, model, float(win), float(hop_s), target), CliReporter(quiet))


@click.command()
@click.argument("examples", nargs=-1)
@click.option("--index", "folder", required=True, type=click.Path(file_okay=False), help="The index folder.")
@click.option("--top", "k", default=100, show_default=True, type=click.IntRange(min=1), help="Windows to find.")
@click.option("--combine", type=click.Choice(["mean", "max"]), default="mean", show_default=True,
              help="How several examples' similarities combine.")
@click.option("--exclude-file", "exclude_files", multiple=True, help="Keep this recording's windows out (repeatable).")
@click.option("--exclude-examples-files", is_flag=True, help="Keep the examples' own recordings out of the hits.")
@click.option("--label", default=None, help="The label column of the review file (default: the examples' names).")
@click.option("--per-window", is_flag=True, help="One row per window instead of merged segments.")
@click.option("--format", "fmt", type=click.Choice(SEARCH_FORMATS), default=None,
              help="Output format (default: by the output's extension, else a text table).")
@click.option("--output", "-o", default=None, help="Review file to write (- for stdout).")
@click.option("--clips", type=click.Path(file_okay=False), default=None, help="Write each hit's audio here (WAV).")
@click.option("--head", "head", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A head file, for --uncertain.")
@click.option("--uncertain", is_flag=True, help="Rank windows by the head's uncertainty (for the next review).")
@target_options(precision=False)
@quiet_option
def search(examples, folder, k, combine, exclude_files, exclude_examples_files, label, per_window, fmt, output, clips,
           head, uncertain, target, quiet) -> None:
    """Find the windows nearest EXAMPLES: audio files, FILE:START-END stretches, or #ID windows of an earlier result.

    Prints the hits (file, times, similarity) merged into segments; writes a review file (CSV, JSONL, Raven,
    Audacity) whose `review` column, filled with accept/reject, trains a head (`streamtag train --annotations`).
    """
    from ..engines.search import SearchJob, run_search_job, search_format
    with user_errors():
        job = SearchJob.create(folder, examples, k=k, combine=combine, exclude_files=tuple(exclude_files),
                               exclude_examples_files=exclude_examples_files, label=label, per_window=per_window,
                               format=search_format(fmt, output), output=output, clips=clips, head=head,
                               uncertain=uncertain, target=target)
        segments = run_search_job(job, CliReporter(quiet))
    if job.format == "text" and not output:
        kind = "uncertainty" if uncertain else "similarity"
        click.echo(f"{'#':>3} {'onset':>9} {'offset':>9} {kind:>10} {'windows':>7} {'first':>7}  file")
        for i, s in enumerate(segments, 1):
            click.echo(f"{i:>3} {s.onset_s:>9.2f} {s.offset_s:>9.2f} {s.score:>10.3f} {s.windows:>7} "
                       f"#{s.first_window:<6}  {s.file}")
