"""Run a `TagJob` on its engine: the one call behind `streamtag tag`."""
from __future__ import annotations

from .job import Reporter, RunSummary, SilentReporter, TagJob
from .local import run_locally
from .ray_engine import run_on_ray


def run_tag_job(job: TagJob, reporter: Reporter | None = None) -> RunSummary:
    """Load the model once, check the outputs against it, and run `job` on its engine.

    Per-file failures are reported and listed in the summary, never raised; a bad option or model raises.
    """
    reporter = reporter or SilentReporter()
    tagger = job.tagger(reporter)
    if job.engine == "ray":
        return run_on_ray(job, tagger.model, reporter)
    return run_locally(job, tagger, reporter)
