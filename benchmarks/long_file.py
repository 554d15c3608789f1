"""A long file's pipeline rate against its network alone, measured in pairs in one process (issue #18's target).

    python benchmarks/long_file.py WEIGHTS FILE [PAIRS]    # e.g. mn10_as_random.pt hour.wav 3

Builds the Tagger of `streamtag tag FILE` on the CPU (the torch-free path: numpy front-end, OpenVINO export), then
alternates:
the exported network alone on one batch of real features (as many calls as the file has batches, from as many
threads at once as the pipeline's network threads), and the whole pipeline on the file. Each pair's ratio is the
pipeline's windows/s over the network's.
"""
import sys
import threading
import time

import streamtag

streamtag.configure_threads()

import numpy as np  # noqa: E402

from streamtag import Tagger  # noqa: E402
from streamtag.audio.sources import FileSource  # noqa: E402

weights, path = sys.argv[1], sys.argv[2]
pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
tagger = Tagger("mn10_as", weights=weights, device="cpu")
spec, batch = tagger.window, tagger.batch_size
first = np.concatenate([b for _, b in zip(range(40), FileSource(path).blocks(tagger.sample_rate))])
span = first[:spec.window + (batch - 1) * spec.hop]
windows = np.stack([span[k * spec.hop:k * spec.hop + spec.window] for k in range(batch)])
model = tagger.model
if hasattr(model, "export"):  # the torch-free path: numpy front-end, OpenVINO export
    features, network = model.frontend(windows), model.export
else:  # the torch front-end, then the same OpenVINO export (the model optimised at its first batch)
    import torch
    tagger.warm_up()
    ready = tagger.runner._ready
    with torch.inference_mode():
        features = ready.frontend(torch.from_numpy(windows))

    def network(x):
        with torch.inference_mode():
            return ready.run_network(x)
total = spec.total(int(round(FileSource(path).length(tagger.sample_rate))))
calls = -(-total // batch)
network(features)
print(f"{path}: {total} windows, batch {batch}, {type(model).__name__}, {tagger.runner.network_threads} network "
      f"thread(s), torch imported: {'torch' in sys.modules}")
callers = tagger.runner.network_threads  # as many threads call the network at once as a file's stream runs


def network_alone() -> float:
    """Windows/s of the network alone, on the file's number of batches, called from `callers` threads at once."""
    def call(n: int) -> None:
        for _ in range(n):
            network(features)
    shares = [calls // callers + (c < calls % callers) for c in range(callers)]
    threads = [threading.Thread(target=call, args=(n,)) for n in shares]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return calls * batch / (time.perf_counter() - t)


for i in range(pairs):
    alone = network_alone()
    t = time.perf_counter()
    stats = tagger.run(FileSource(path))
    whole = stats.windows / (time.perf_counter() - t)
    print(f"pair {i + 1}: network alone {alone:.1f} windows/s, pipeline {whole:.1f} windows/s = {whole / alone:.0%}")
