"""The local engine: tag a job's files one after the other in this process, writing every planned output."""
from __future__ import annotations

import os
import time

from ..audio.sources import FileSource
from ..errors import ConfigError, StreamtagError
from ..outputs.recording import RecordingOutputs, recording_stems
from ..outputs.sinks import open_text
from ..pipeline.tagger import Tagger
from .job import Reporter, RunSummary, TagJob


def run_locally(job: TagJob, tagger: Tagger, reporter: Reporter) -> RunSummary:
    """Tag every input with `tagger`; a file that fails is reported and the others still run.

    Ctrl-C ends the run with `interrupted` set; what was written to a shared output file stays
    (complete lines), unfinished per-file outputs are discarded.
    """
    t0 = time.monotonic()
    plan = job.plan
    summary = RunSummary(files=len(job.inputs), workers=1, engine="local")
    shared_out = shared_file = None
    if not plan.output_dir and plan.formats[0] != "npz":
        try:
            shared_out, shared_file = open_text(plan.output or "-")
        except OSError as e:
            raise ConfigError(f"cannot write {plan.output}: {e.strerror or e}") from None
        if shared_file is None:  # standard output: printed rows and progress displays take turns
            shared_out = reporter.text_output(shared_out)
    try:
        for i, (path, stem) in enumerate(zip(job.inputs, recording_stems(list(job.inputs)))):
            try:
                label = os.path.basename(path) if len(job.inputs) == 1 else \
                    f"[{i + 1}/{len(job.inputs)}] {os.path.basename(path)}"
                n = tag_recording(tagger, job, path, stem, shared_out, i == 0, reporter, label)
            except StreamtagError as e:
                summary.failed.append({"path": path, "error": str(e)})
                reporter.error(str(e))
                continue
            summary.completed += 1
            summary.windows += n
            summary.audio_s += tagger.stats.audio_s
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if shared_file is not None:
            shared_file.commit()  # everything written so far is complete lines
        elif shared_out is not None:
            shared_out.flush()
    summary.elapsed_s = time.monotonic() - t0
    return summary


def tag_recording(tagger: Tagger, job: TagJob, path: str, stem: str, shared_out, first: bool,
                  reporter: Reporter, label: str | None = None) -> int:
    """Tag one file and write every planned output of it (all or none); returns its window count."""
    source = FileSource(path)
    outputs = RecordingOutputs(job.plan, tagger, path, stem, shared_out, first)
    subscribers: list = [outputs]
    bar = reporter.progress_bar(label or os.path.basename(path), source.duration_s,
                                tagger.window.total(source.expected_samples(tagger.sample_rate)))
    if bar is not None:
        subscribers.append(lambda r: bar.update(1))
    try:
        for cb in subscribers:
            tagger.subscribe(cb)
        stats = tagger.run(source)
        if stats.nonfinite_samples:
            reporter.warning(f"{path}: {stats.nonfinite_samples} NaN/Inf samples were replaced by 0")
    except BaseException:
        outputs.discard()
        raise
    finally:
        if bar is not None:
            bar.close()
        for cb in subscribers:
            tagger.unsubscribe(cb)
    outputs.finish(stats.audio_s)
    return stats.windows
