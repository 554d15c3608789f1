"""Run a `TagJob` on its engine: the one call behind `streamtag tag`."""
from __future__ import annotations

from ..audio.sources import path_problem
from .job import Reporter, RunSummary, SilentReporter, TagJob
from .local import run_locally
from .ray_engine import run_on_ray


def run_tag_job(job: TagJob, reporter: Reporter | None = None) -> RunSummary:
    """Load the model once, check the outputs against it, and run `job` on its engine.

    Per-file failures are reported and listed in the summary, never raised; a bad option or model raises.
    """
    reporter = reporter or SilentReporter()
    missing = {p: problem for p in job.inputs if (problem := path_problem(p))}
    for message in missing.values():  # before any model notice: these fail whatever the model
        reporter.error(message)
    present = job.replace(inputs=tuple(p for p in job.inputs if p not in missing))
    if not present.inputs:
        summary = RunSummary(engine=job.engine)
    elif job.engine == "ray":
        summary = run_on_ray(present, job.tagger(reporter).model, reporter)
    else:
        summary = run_locally(present, job.tagger(reporter), reporter)
    summary.files = len(job.inputs)
    summary.failed[:0] = [{"path": p, "error": message} for p, message in missing.items()]
    return summary
