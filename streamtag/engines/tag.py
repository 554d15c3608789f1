"""Run a `TagJob` on its engine: the one call behind `streamtag tag`."""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from typing import Iterator

from ..audio.ffmpeg import is_url
from ..audio.sources import path_problem
from ..errors import ConfigError
from .job import Reporter, RunSummary, SilentReporter, TagJob
from .local import run_locally
from .ray_engine import run_on_ray


STDIN = "-"


def run_tag_job(job: TagJob, reporter: Reporter | None = None) -> RunSummary:
    """Load the model once, check the outputs against it, and run `job` on its engine.

    Per-file failures are reported and listed in the summary, never raised; a bad option or model raises.
    An input `-` is audio piped to standard input (any format libsndfile or FFmpeg reads), spooled to a
    temporary file.
    """
    with _stdin_spooled(job) as spooled:
        return _run(spooled, reporter or SilentReporter())


@contextlib.contextmanager
def _stdin_spooled(job: TagJob) -> Iterator[TagJob]:
    if STDIN not in job.inputs:
        yield job
        return
    if job.engine.engine == "ray":
        raise ConfigError("the ray engine reads files its workers can open: save standard input to a file first")
    if sys.stdin is None or sys.stdin.isatty():
        raise ConfigError("input '-' reads audio from standard input, which is a terminal: pipe a recording in")
    with tempfile.TemporaryDirectory(prefix="streamtag-stdin-") as folder:
        path = os.path.join(folder, "stdin")
        with open(path, "wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
        if os.path.getsize(path) == 0:
            raise ConfigError("input '-': standard input held no audio")
        yield job.replace(inputs=tuple(path if p == STDIN else p for p in job.inputs))


def _run(job: TagJob, reporter: Reporter) -> RunSummary:
    missing = {p: problem for p in job.inputs if not is_url(p) and (problem := path_problem(p))}
    for message in missing.values():  # before any model notice: these fail whatever the model
        reporter.error(message)
    present = job.replace(inputs=tuple(p for p in job.inputs if p not in missing))
    if not present.inputs:
        summary = RunSummary(engine=job.engine.engine)
    elif job.engine.engine == "ray":
        summary = run_on_ray(present, job.tagger(reporter), reporter)
    else:
        summary = run_locally(present, job.tagger(reporter), reporter)
    summary.files = len(job.inputs)
    summary.failed[:0] = [{"path": p, "error": message} for p, message in missing.items()]
    return summary
