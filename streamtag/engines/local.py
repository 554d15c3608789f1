"""The local engine: tag a job's files one after the other in this process, writing every planned output."""
from __future__ import annotations

import os
import time

from ..audio.inputs import open_audio
from ..errors import OutputError, StreamtagError
from ..outputs.recording import RecordingOutputs, recording_stems
from ..outputs.sinks import open_text, remove_stale_partials
from ..pipeline.tagger import Tagger
from ..outputs.monitor import Monitoring
from .job import Reporter, RunSummary, TagJob, open_monitoring
from .signals import exit_code


def run_locally(job: TagJob, tagger: Tagger, reporter: Reporter) -> RunSummary:
    """Tag every input with `tagger`; a file that fails is reported and the others still run.

    With an output folder, recordings whose outputs are already complete (same settings) are
    skipped, and temporary files that killed runs left there are removed first. Ctrl-C (or SIGTERM
    under `interrupts_from_signals`) ends the run with `interrupted` set: what was written to a
    shared output file stays (complete lines), unfinished per-file outputs are discarded. An output
    that cannot be written (full disk, no permission, closed pipe) ends the run with `OutputError`;
    the recordings finished before it keep their outputs. With `job.monitor`, every recording's events are also
    stored, clipped and alerted (a run row per recording), with the outputs' event settings.
    """
    t0 = time.monotonic()
    summary = RunSummary(files=len(job.inputs), workers=1, engine="local")
    monitoring = None if job.monitor is None else open_monitoring(job.monitor, tagger)
    try:
        _run_inputs(job, tagger, reporter, summary, monitoring)
    finally:
        if monitoring is not None:
            monitoring.close()
            summary.monitor, summary.dropped_alerts = monitoring.summary(), monitoring.dropped_alerts
    summary.elapsed_s = time.monotonic() - t0
    return summary


def _run_inputs(job: TagJob, tagger: Tagger, reporter: Reporter, summary: RunSummary,
                monitoring: Monitoring | None) -> None:
    plan = job.plan
    folder = plan.output_dir or (os.path.dirname(os.path.abspath(plan.output)) if plan.output not in (None, "-")
                                 else None)
    if folder is not None:
        stale = remove_stale_partials(folder)
        if stale:
            reporter.notice(f"removed {len(stale)} temporary file(s) left by an interrupted run in {folder}")
    shared_out = shared_file = None
    if not plan.output_dir and plan.formats[0] != "npz":
        try:
            shared_out, shared_file = open_text(plan.output or "-")
        except OSError as e:
            raise OutputError.writing(plan.output, e) from None
        if shared_file is None:  # standard output: printed rows and progress displays take turns
            shared_out = reporter.text_output(shared_out)
    try:
        for i, (path, stem) in enumerate(zip(job.inputs, recording_stems(list(job.inputs)))):
            if plan.output_dir and plan.is_complete(stem, tagger):
                summary.skipped.append(path)
                reporter.notice(f"{path}: its outputs in {plan.output_dir} are complete (same settings); skipped")
                continue
            try:
                label = os.path.basename(path) if len(job.inputs) == 1 else \
                    f"[{i + 1}/{len(job.inputs)}] {os.path.basename(path)}"
                n = tag_recording(tagger, job, path, stem, shared_out, i == 0, reporter, label, monitoring)
            except OutputError:
                raise  # the next recording would fail the same way
            except StreamtagError as e:
                summary.failed.append({"path": path, "error": str(e)})
                reporter.error(str(e))
                continue
            summary.completed += 1
            summary.windows += n
            summary.audio_s += tagger.stats.audio_s
    except KeyboardInterrupt as e:
        summary.interrupted = True
        summary.exit_code = exit_code(e)
    finally:
        _close_shared(plan, shared_out, shared_file)


def _close_shared(plan, shared_out, shared_file) -> None:
    """Commit the shared output file (its lines are complete), or flush standard output."""
    try:
        if shared_file is not None:
            shared_file.commit()
        elif shared_out is not None:
            shared_out.flush()
    except OSError as e:
        raise OutputError.writing(plan.output if shared_file is not None else "standard output", e) from None


def tag_recording(tagger: Tagger, job: TagJob, path: str, stem: str, shared_out, first: bool,
                  reporter: Reporter, label: str | None = None, monitoring: Monitoring | None = None) -> int:
    """Tag one input and write every planned output of it; returns its window count.

    A file's outputs are all written or none. A live input (a network stream) has no end to wait
    for: its outputs so far are kept when Ctrl-C or a lost connection ends it. The monitor's events (database
    rows, clips, alerts) are kept whatever happens: each is written as it closes.
    """
    source = open_audio(path, job.input_options, start_utc=job.start_of(path))
    outputs = RecordingOutputs(job.plan, tagger, path, stem, shared_out, first,
                               privacy=None if monitoring is None else monitoring.privacy_gate())
    outputs.on_error = tagger.stop  # an output that cannot be written: stop tagging this file
    subscribers: list = [outputs]
    monitor = None
    if monitoring is not None:  # the same event settings as the --events outputs
        monitor = monitoring.monitor(path, job.plan.settings, tagger.window.hop_s)
        subscribers.append(monitor)
    length = source.length(tagger.sample_rate)
    bar = reporter.progress_bar(label or os.path.basename(path),
                                None if length is None else length / tagger.sample_rate,
                                None if length is None else tagger.window.total(length))
    if bar is not None:
        subscribers.append(lambda r: bar.update(1))
    try:
        for cb in subscribers:
            tagger.subscribe(cb)
        stats = _run_source(tagger, source, outputs)
        if stats.nonfinite_samples:
            reporter.warning(f"{path}: {stats.nonfinite_samples} NaN/Inf samples were replaced by 0")
        if stats.lost_samples:
            reporter.warning(f"{path}: {stats.lost_samples / tagger.sample_rate:.2f} s of audio lost "
                             f"({stats.lossy_windows} windows marked)")
    except BaseException:
        outputs.discard()
        raise
    finally:
        if bar is not None:
            bar.close()
        for cb in subscribers:
            tagger.unsubscribe(cb)
        if monitor is not None:  # after the last window: open events close, the last clips are written
            monitor.close(tagger.stats.audio_s)
    outputs.finish(stats.audio_s)
    return stats.windows


def _run_source(tagger: Tagger, source, outputs: RecordingOutputs):
    """Run `source` to its end. A live one ended by Ctrl-C or a failure (a connection lost for good) still
    publishes what it captured, and its outputs so far are committed before the interrupt or error goes on."""
    if not source.live:
        return tagger.run(source)
    tagger.start(source)
    try:
        try:
            tagger.join()
        except KeyboardInterrupt:
            source.close()  # end of capture: the windows of what arrived are still published
            try:
                tagger.join(timeout=10.0)
            finally:
                outputs.finish(tagger.stats.audio_s)
            raise
        except StreamtagError:
            outputs.finish(tagger.stats.audio_s)
            raise
    finally:
        tagger.stop(wait=10.0)
    return tagger.stats
