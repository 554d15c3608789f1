"""Run a `TagJob` on its engine: the one call behind `streamtag tag`."""
from __future__ import annotations

import os

from .job import Reporter, RunSummary, SilentReporter, TagJob
from .local import run_locally
from .ray_engine import run_on_ray


def run_tag_job(job: TagJob, reporter: Reporter | None = None) -> RunSummary:
    """Load the model once, check the outputs against it, and run `job` on its engine.

    Per-file failures are reported and listed in the summary, never raised; a bad option or model raises.
    """
    reporter = reporter or SilentReporter()
    missing = {p: f"{p}: {'is a directory, not an audio file' if os.path.isdir(p) else 'no such file'}"
               for p in job.inputs if not os.path.isfile(p)}
    for message in missing.values():  # before any model notice: these fail whatever the model
        reporter.error(message)
    present = tuple(p for p in job.inputs if p not in missing)
    if present:
        tagger = job.tagger(reporter)
        run = run_on_ray if job.engine == "ray" else run_locally
        summary = run(job.replace(inputs=present), tagger.model if job.engine == "ray" else tagger, reporter)
    else:
        summary = RunSummary(engine=job.engine)
    summary.files = len(job.inputs)
    summary.failed[:0] = [{"path": p, "error": message} for p, message in missing.items()]
    return summary
