"""Where a `streamtag tag` run's time goes, each stage timed alone in one process (for the README's budget table).

    python benchmarks/stages.py WEIGHTS FILE WINDOW HOP     # e.g. mn10_as_random.pt ten_min.wav 10 2.5

The Tagger is built as `streamtag tag FILE` builds it: the file's length picks the numpy front-end (torch-free)
or, from 5 minutes on, torch's (`import torch` is then part of "Tagger").
"""
import sys
import time

t0 = time.perf_counter()
import streamtag.cli  # noqa: E402,F401 - what the command imports
t1 = time.perf_counter()
import numpy as np  # noqa: E402

import streamtag  # noqa: E402
from streamtag import Tagger  # noqa: E402
from streamtag.audio.sources import FileSource  # noqa: E402
from streamtag.models.mel import FrameCache  # noqa: E402

weights, path, win, hop = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
streamtag.configure_threads()
t2 = time.perf_counter()
tagger = Tagger("mn10_as", win, hop, weights=weights, device="cpu")
t3 = time.perf_counter()
tagger.warm_up()
t4 = time.perf_counter()
audio = np.concatenate(list(FileSource(path).blocks(tagger.sample_rate)))
t5 = time.perf_counter()
model, spec, batch = tagger.model, tagger.window, tagger.batch_size
if hasattr(model, "export"):  # numpy front-end, OpenVINO export
    frontend, network, as_input = model.frontend, model.export, np.asarray
else:  # torch front-end, then the model's OpenVINO network (optimised at the first batch)
    import torch
    torch.set_grad_enabled(False)
    ready = tagger.runner._ready
    frontend, network, as_input = ready.frontend, ready.run_network, torch.from_numpy
total = spec.total(len(audio))
frontend_s = network_s = 0.0
cache = FrameCache()  # as a stream shares frames with its previous batch
for k0 in range(0, total, batch):
    ks = range(k0, min(total, k0 + batch))
    start, end = spec.start(ks[0]), spec.end(ks[-1])
    span = np.zeros(end - start, np.float32)
    piece = audio[start:end]
    span[:len(piece)] = piece
    a = time.perf_counter()
    features = frontend.windows(as_input(span), len(ks), spec.hop, spec.window, start, cache)
    b = time.perf_counter()
    network(features)
    frontend_s, network_s = frontend_s + b - a, network_s + time.perf_counter() - b
t6 = time.perf_counter()
stats = tagger.run(FileSource(path))
t7 = time.perf_counter()
print(f"window {win:g} s, hop {hop:g} s: import streamtag.cli {t1 - t0:.2f} s, Tagger {t3 - t2:.2f} s, first batch "
      f"{t4 - t3:.2f} s, decode + resample {t5 - t4:.2f} s, front-end {frontend_s:.2f} s, network {network_s:.2f} s "
      f"({network_s / total * 1e3:.1f} ms per window), whole pipeline {t7 - t6:.2f} s "
      f"({stats.windows / (t7 - t6):.0f} windows/s), torch imported: {'torch' in sys.modules}")
