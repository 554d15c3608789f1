"""Where a `streamtag tag` run's time goes: each stage timed alone in one process, then the whole pipeline.

    python benchmarks/stages.py WEIGHTS FILE WINDOW HOP [--json OUT]   # e.g. mn10_as_random.pt ten_min.wav 10 2.5

The Tagger is the torch-free CPU path (numpy front-end, cached OpenVINO export) for any file length. Stages,
each as wall seconds and CPU seconds of the process (both cores count):
  start-up    import streamtag.cli, build the Tagger (export loaded and compiled from the cache), first batch
  decode      the file decoded and resampled to the model's rate (FileSource, one thread)
  front-end   the numpy log-mels of every batch, frames shared within a batch and with the previous one
  network     the export alone on those features at the pipeline's batch, from as many threads at once as
              the pipeline's network threads: the floor of a run
  pipeline    Tagger.run on the file with no subscriber (decode, front-end and network overlapped, dispatch)
  outputs     the same with an NPZ sink: its calls and its close() timed inside the run
To compare two checkouts, run it alternately with each on PYTHONPATH (a checkout whose Tagger still takes
`audio_s` gets audio_s=None, which there also means the numpy front-end).
"""
import json
import os
import queue
import sys
import tempfile
import threading
import time

t0 = time.perf_counter()
c0 = time.process_time()
import streamtag.cli  # noqa: E402,F401 - what the command imports
t1 = time.perf_counter()
c1 = time.process_time()
import numpy as np  # noqa: E402

import streamtag  # noqa: E402
from streamtag import Tagger  # noqa: E402
from streamtag.audio.sources import FileSource  # noqa: E402
from streamtag.models.mel import FrameCache  # noqa: E402
from streamtag.outputs.sinks import NpzSink  # noqa: E402


class Clock:
    """Wall and process CPU seconds of a stage."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def row(self) -> dict:
        return {"wall_s": round(self.wall, 4), "cpu_s": round(self.cpu, 4)}


class TimedSink:
    """An NPZ sink whose calls and close() add up their own wall time (the outputs stage inside a run)."""

    def __init__(self, sink: NpzSink) -> None:
        self.sink, self.seconds = sink, 0.0

    def __call__(self, result) -> None:
        a = time.perf_counter()
        self.sink(result)
        self.seconds += time.perf_counter() - a

    def close(self) -> None:
        a = time.perf_counter()
        self.sink.close()
        self.seconds += time.perf_counter() - a


def network_alone(export, features: list, threads: int) -> None:
    """Every batch's features through the export, from `threads` threads at once (as a stream's network threads)."""
    todo: queue.Queue = queue.Queue()
    for f in features:
        todo.put(f)

    def work() -> None:
        while True:
            try:
                f = todo.get_nowait()
            except queue.Empty:
                return
            export(f)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def main(argv: list[str]) -> dict:
    weights, path, win, hop = argv[0], argv[1], float(argv[2]), float(argv[3])
    streamtag.configure_threads()
    with Clock() as build:
        tagger = Tagger("mn10_as", win, hop, weights=weights, device="cpu")
    with Clock() as first:
        tagger.warm_up()
    model, spec, batch = tagger.model, tagger.window, tagger.batch_size
    if model.needs_torch:
        raise SystemExit(f"the Tagger is not the torch-free path ({type(model).__name__}): no export cached yet? "
                         "run `streamtag tag` on the file once first")
    with Clock() as decode:
        audio = np.concatenate(list(FileSource(path).blocks(tagger.sample_rate)))
    total = spec.total(len(audio))
    features = []
    cache = FrameCache()  # as a stream shares frames with its previous batch
    with Clock() as frontend:
        for k0 in range(0, total, batch):
            ks = range(k0, min(total, k0 + batch))
            start, end = spec.start(ks[0]), spec.end(ks[-1])
            span = audio[start:end]
            if len(span) < end - start:
                span = np.pad(span, (0, end - start - len(span)))
            features.append(model.frontend.windows(span, len(ks), spec.hop, spec.window, start, cache))
    threads = tagger.runner.network_threads
    network_alone(model.export, features[:2], threads)  # the requests of each thread made before timing
    with Clock() as network:
        network_alone(model.export, features, threads)
    del features
    with Clock() as pipeline:
        stats = tagger.run(FileSource(path))
    with tempfile.TemporaryDirectory() as d:
        sink = TimedSink(NpzSink(os.path.join(d, "out.npz"), tagger.labels, path, spec.hop_s))
        subscription = tagger.subscribe(sink)
        with Clock() as with_outputs:
            tagger.run(FileSource(path))
            sink.close()
        subscription.unsubscribe()
    return {
        "window_s": win, "hop_s": hop, "windows": int(stats.windows), "batch": batch, "network_threads": threads,
        "torch_imported": "torch" in sys.modules,
        "import_cli": {"wall_s": round(t1 - t0, 4), "cpu_s": round(c1 - c0, 4)},
        "tagger": build.row(), "first_batch": first.row(), "decode_resample": decode.row(),
        "frontend": frontend.row(), "network": network.row(), "pipeline": pipeline.row(),
        "pipeline_with_npz": with_outputs.row(), "outputs_inside_run_s": round(sink.seconds, 4),
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    out = None
    if "--json" in args:
        i = args.index("--json")
        out, args = args[i + 1], args[:i] + args[i + 2:]
    report = main(args)
    print(json.dumps(report))
    if out:
        with open(out, "w") as f:
            json.dump(report, f)
