"""Runtimes: which one runs a network, and the OpenVINO export cache (keyed, atomic, rebuilt when unreadable)."""
import logging
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from streamtag import Tagger
from streamtag.errors import ConfigError, DependencyError
from streamtag.models import RunTarget, runtimes
from streamtag.models.runtimes import (OnnxRuntimeNetwork, OpenVINONetwork, choose_runtime, compiled_cache,
                                      network_digest)

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("requested, exportable, device, precision, installed, expected", [
    ("auto", True, CPU, "fp32", True, "openvino"),
    ("auto", True, CPU, "fp32", False, "torch"),
    ("auto", False, CPU, "fp32", True, "torch"),  # e.g. DyMN: batch-dependent grouped conv
    ("auto", True, CPU, "bf16", True, "torch"),
    ("auto", True, CUDA, "fp32", True, "torch"),
    ("torch", True, CPU, "fp32", True, "torch"),
    ("openvino", True, CPU, "fp32", True, "openvino"),
    ("openvino", True, CUDA, "fp32", True, ConfigError),
    ("openvino", True, CPU, "bf16", True, ConfigError),
    ("openvino", True, CPU, "fp32", False, DependencyError),
    ("openvino", False, CPU, "fp32", True, ConfigError),
    ("onnxruntime", True, CPU, "fp32", True, "onnxruntime"),
    ("onnxruntime", True, CUDA, "fp32", True, ConfigError),
    ("onnxruntime", True, CPU, "bf16", True, ConfigError),
    ("onnxruntime", True, CPU, "fp32", False, DependencyError),
    ("onnxruntime", False, CPU, "fp32", True, ConfigError),
    ("tensorrt", True, CPU, "fp32", True, ConfigError),
])
def test_runtime_choice(requested, exportable, device, precision, installed, expected, monkeypatch):
    monkeypatch.setattr(runtimes, "openvino_available", lambda: installed)
    monkeypatch.setattr(runtimes, "onnxruntime_available", lambda: installed)
    if isinstance(expected, type):
        with pytest.raises(expected):
            choose_runtime(requested, exportable, device, precision)
    else:
        assert choose_runtime(requested, exportable, device, precision) == expected


def features(mn04, n=32000, batch=3):
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal((batch, n)).astype(np.float32) * 0.1)
    with torch.no_grad():
        return mn04.frontend(wave)


@pytest.mark.parametrize("engine", [OpenVINONetwork, OnnxRuntimeNetwork])
def test_export_matches_torch_at_any_batch_and_refuses_other_lengths(engine, mn04):
    x = features(mn04)
    ov = engine(mn04.network, x[:1])
    with torch.inference_mode():
        for b in (1, 3):
            ours, theirs = ov(x[:b]), mn04.network(x[:b])
            assert (ours[0].sigmoid() - theirs[0].sigmoid()).abs().max() <= 1e-4
            assert ((ours[1] - theirs[1]).norm() / theirs[1].norm()) <= 1e-4
    with pytest.raises(ConfigError, match="takes inputs"):
        ov(features(mn04, n=16000))


def cached_export(model, x: np.ndarray):
    """The export cache entry of `model`'s network for features shaped like `x`, exported now if missing."""
    OpenVINONetwork(model.network, torch.from_numpy(x[:1]))
    return runtimes.export_folder(f"state:{network_digest(model.network)}", x.shape[1:])


@pytest.mark.parametrize("streams", [1, 2, 3])
def test_an_export_split_across_streams_and_called_from_threads_gives_each_rows_outputs(streams, mn04):
    x = features(mn04, batch=5).numpy()
    folder = cached_export(mn04, x)
    one = runtimes.CompiledExport.from_folder(folder, threads=1)
    many = runtimes.CompiledExport.from_folder(folder, threads=streams)
    assert 1 <= many.streams <= streams and many.streams == many.compiled.get_property("NUM_STREAMS")
    rows = [one(x[i:i + 1]) for i in range(len(x))]  # each row alone, one stream
    for batch in (1, 2, 5):
        for out, expected in zip(many(x[:batch]), zip(*rows[:batch])):
            np.testing.assert_allclose(out, np.concatenate(expected), rtol=1e-5, atol=1e-6)
    results = [None] * 6

    def call(i):
        results[i] = many(x)
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results:  # concurrent callers each get their own batch's outputs, whole
        for out, expected in zip(got, zip(*rows)):
            np.testing.assert_allclose(out, np.concatenate(expected), rtol=1e-5, atol=1e-6)


def test_the_first_call_sets_the_part_size_and_later_batches_run_in_rounds_of_it(mn04):
    """A live stream that falls behind sends larger batches: they run in rounds of the part size the first call
    compiled (no compile, no new buffers mid-run), and smaller ones padded to it, each row as it runs alone."""
    x = features(mn04, batch=11).numpy()
    folder = cached_export(mn04, x)
    one = runtimes.CompiledExport.from_folder(folder, threads=1)
    rows = [one(x[i:i + 1]) for i in range(len(x))]
    assert one.part_size == 1
    two = runtimes.CompiledExport.from_folder(folder, threads=2)
    assert two.part_size is None
    for batch in (4, 11, 1, 3):  # the first compiles parts of 2 rows (4 over 2 streams); 11 runs in 3 rounds
        for out, expected in zip(two(x[:batch]), zip(*rows[:batch])):
            np.testing.assert_allclose(out, np.concatenate(expected), rtol=1e-5, atol=1e-6)
        assert two.part_size == -(-4 // two.streams)


def test_cpu_runners_declare_their_network_threads(mn04):
    from streamtag.pipeline.runner import ModelRunner
    for runtime, threads in (("openvino", runtimes.default_threads()), ("torch", 1), ("onnxruntime", 1)):
        runner = ModelRunner(mn04, RunTarget("cpu"), runtime)
        assert runner.pipelined and runner.network_threads == threads


def test_export_is_cached_by_weights_and_shape_and_rebuilt_when_corrupt(mn04, monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("STREAMTAG_HOME", str(tmp_path))  # an empty cache of its own
    x = features(mn04)
    OpenVINONetwork(mn04.network, x[:1])
    entries = list(compiled_cache().iterdir())
    assert len(entries) == 1 and (entries[0] / "network.xml").is_file() and (entries[0] / "network.bin").is_file()
    assert not any(p.name.endswith(".partial") for p in compiled_cache().iterdir())

    def no_export(*a, **k):
        raise AssertionError("exported again instead of reading the cache")
    monkeypatch.setattr(runtimes, "_export", no_export)
    OpenVINONetwork(mn04.network, x[:2])  # same shape, another batch: the cached export
    with pytest.raises(AssertionError, match="exported again"):
        OpenVINONetwork(mn04.network, features(mn04, n=16000)[:1])  # another length: another entry
    monkeypatch.undo()
    monkeypatch.setenv("STREAMTAG_HOME", str(tmp_path))

    (entries[0] / "network.xml").write_text("<not a model")
    with caplog.at_level(logging.WARNING, logger="streamtag"):
        rebuilt = OpenVINONetwork(mn04.network, x[:1])
    assert "rebuilding the OpenVINO export" in caplog.text
    with torch.inference_mode():
        assert (rebuilt(x)[0] - mn04.network(x)[0]).abs().max() <= 1e-3


def test_onnx_export_is_cached_and_rebuilt_when_corrupt(mn04, monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("STREAMTAG_HOME", str(tmp_path))
    x = features(mn04)
    OnnxRuntimeNetwork(mn04.network, x[:1])
    entries = list(compiled_cache().iterdir())
    assert len(entries) == 1 and entries[0].name.startswith("onnx-") and (entries[0] / "network.onnx").is_file()
    monkeypatch.setattr(runtimes, "_export_onnx", lambda *a: pytest.fail("exported again instead of the cache"))
    OnnxRuntimeNetwork(mn04.network, x[:2])
    monkeypatch.undo()
    monkeypatch.setenv("STREAMTAG_HOME", str(tmp_path))
    (entries[0] / "network.onnx").write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="streamtag"):
        rebuilt = OnnxRuntimeNetwork(mn04.network, x[:1])
    assert "rebuilding the ONNX export" in caplog.text
    with torch.inference_mode():
        assert (rebuilt(x)[0] - mn04.network(x)[0]).abs().max() <= 1e-3


def test_digest_follows_the_weights(mn04, mn10_random):
    assert network_digest(mn04.network) == network_digest(mn04.network)
    assert network_digest(mn04.network) != network_digest(mn10_random.network)


def test_auto_uses_openvino_for_mobilenets_and_torch_for_dymn(mn04, dymn04_random):
    wave = np.random.default_rng(1).standard_normal(48000).astype(np.float32) * 0.1
    for model, expected in ((mn04, "openvino"), (dymn04_random, "torch")):
        tagger = Tagger(model, window=1.0, hop=0.5, device="cpu")
        list(tagger.tag_array(wave, 32000))
        assert tagger.runner.runtime == expected
    with pytest.raises(ConfigError, match="no OpenVINO export"):
        Tagger(dymn04_random, window=1.0, hop=0.5, device="cpu", runtime="openvino")


def test_openvino_runs_without_its_usage_telemetry(tmp_path):
    """OpenVINO's converter would start a Google Analytics client (an id under ~/intel); streamtag keeps it off."""
    code = ("import torch; from streamtag.models import create_model; from streamtag.models.runtimes import "
            "OpenVINONetwork; import sys; m = create_model('mn04_as'); x = m.frontend(torch.zeros(1, 32000)).detach(); "
            "OpenVINONetwork(m.network, x); print(sys.modules.get('openvino_telemetry'))")
    env = {**os.environ, "HOME": str(tmp_path), "STREAMTAG_HOME": str(tmp_path / "st")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "None" and not (tmp_path / "intel").exists()


@pytest.mark.parametrize("window, hop", [(10.0, 2.5), (1.0, 0.5), (3.0, 3.0), (2.0, 0.75)])
def test_the_run_without_torch_equals_the_torch_front_end_export(window, hop, mn04):
    """By name with the export cached: numpy front-end + OpenVINO, the same results as the torch front-end's."""
    from streamtag.pipeline.export_runner import ExportRunner
    from tests.helpers import DEMO_CLIP, MN04_WEIGHTS
    via_torch = Tagger(mn04, window=window, hop=hop, device="cpu", runtime="openvino")
    expected = list(via_torch.tag_file(DEMO_CLIP))
    tagger = Tagger("mn04_as", weights=MN04_WEIGHTS, window=window, hop=hop, device="cpu")
    assert isinstance(tagger.runner, ExportRunner) and tagger.runner.runtime == "openvino"
    got = list(tagger.tag_file(DEMO_CLIP))
    assert [(r.index, r.start_s, r.end_s) for r in got] == [(r.index, r.start_s, r.end_s) for r in expected]
    assert np.abs(np.stack([r.scores for r in got]) - np.stack([r.scores for r in expected])).max() <= 1e-5
    assert np.abs(np.stack([r.embedding for r in got]) - np.stack([r.embedding for r in expected])).max() <= 1e-5


def test_the_cached_export_is_found_without_the_network(mn04, random_checkpoint, caplog):
    """Keyed by the weights file, family config and input shape: another file, length or config is another entry;
    a corrupt entry is not used (the torch path rebuilds it)."""
    from streamtag.models import get_spec, resolve_weights
    from streamtag.models.exported import ExportedModel
    from streamtag.models.runtimes import BLOB_FOLDER
    from tests.helpers import MN04_WEIGHTS
    Tagger(mn04, window=1.0, hop=0.5, device="cpu", runtime="openvino").warm_up()
    spec = get_spec("mn04_as")
    weights = resolve_weights(spec, MN04_WEIGHTS)
    found = ExportedModel.from_cache(spec, weights, 32000)
    assert found is not None and any((found.export_folder / BLOB_FOLDER).iterdir())  # OpenVINO's compiled blob
    assert ExportedModel.from_cache(spec, weights, 32000 + 320) is None  # another input length
    assert ExportedModel.from_cache(spec, resolve_weights(spec, random_checkpoint("mn04_as")), 32000) is None
    assert ExportedModel.from_cache(spec.with_config(n_mels=64), weights, 32000) is None
    assert ExportedModel.from_cache(get_spec("dymn04_as"), weights, 32000) is None  # a family without exports
    (found.export_folder / "network.xml").write_text("<not a model")
    assert ExportedModel.from_cache(spec, weights, 32000) is None
    with caplog.at_level(logging.WARNING, logger="streamtag"):
        tagger = Tagger("mn04_as", weights=MN04_WEIGHTS, window=1.0, hop=0.5, device="cpu")
        tagger.warm_up()
    assert tagger.runner.runtime == "openvino" and "rebuilding the OpenVINO export" in caplog.text
    assert ExportedModel.from_cache(spec, weights, 32000) is not None


@pytest.mark.parametrize("options, torch_needed", [
    ({}, False), ({"runtime": "openvino"}, False), ({"runtime": "torch"}, True), ({"precision": "bf16"}, True),
    ({"optimize": False}, True),
])
def test_what_runs_without_torch(options, torch_needed, mn04):
    from streamtag.pipeline.export_runner import ExportRunner
    Tagger(mn04, window=1.0, hop=0.5, device="cpu", runtime="openvino").warm_up()
    tagger = Tagger("mn04_as", window=1.0, hop=0.5, device="cpu", **options)
    assert isinstance(tagger.runner, ExportRunner) is not torch_needed


def test_a_run_that_exports_gives_what_later_runs_give(tmp_path, monkeypatch):
    """On a cache miss the export is made at once and the run goes through it: the first run of a model equals
    every later one (the same numpy front-end), not only within float rounding."""
    from streamtag.models.runtimes import compiled_cache
    from streamtag.pipeline.export_runner import ExportRunner
    from tests.helpers import DEMO_CLIP, MN04_WEIGHTS
    monkeypatch.setenv("STREAMTAG_HOME", str(tmp_path / "fresh"))  # an empty export cache
    first = Tagger("mn04_as", weights=MN04_WEIGHTS, window=2.0, hop=1.0, device="cpu")
    assert isinstance(first.runner, ExportRunner) and any(compiled_cache().iterdir())
    later = Tagger("mn04_as", weights=MN04_WEIGHTS, window=2.0, hop=1.0, device="cpu")
    a, b = (np.stack([r.scores for r in t.tag_file(DEMO_CLIP)]) for t in (first, later))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("window", [0.5, 1.0, 4.5, 10.0, 30.0])
def test_every_window_length_takes_the_torch_free_path(window, mn04):
    """One CPU path: an exportable model in fp32 on the CPU runs its export with the numpy front-end whatever the
    window (no length rule); a head, bf16 or `runtime="torch"` take the torch model."""
    from streamtag.pipeline.export_runner import ExportRunner
    from tests.helpers import MN04_WEIGHTS
    tagger = Tagger("mn04_as", weights=MN04_WEIGHTS, window=window, hop=window / 2, device="cpu")
    assert isinstance(tagger.runner, ExportRunner) and tagger.runner.runtime == "openvino"
    assert not tagger.model.needs_torch
    torch_tagger = Tagger("mn04_as", weights=MN04_WEIGHTS, window=window, hop=window / 2, device="cpu",
                          runtime="torch")
    assert not isinstance(torch_tagger.runner, ExportRunner) and torch_tagger.model.needs_torch


FIRST_CONVERSIONS = """
import threading
from streamtag.models.runtimes import import_openvino
ov = import_openvino()
start = threading.Barrier(2)
def convert():
    start.wait()
    ov.Type.f32.to_dtype()  # what an infer request's first numpy input does
threads = [threading.Thread(target=convert) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_two_threads_first_numpy_conversions_never_deadlock():
    """OpenVINO's numpy bridge is ready once `import_openvino` returns: left to the first conversion, two network
    threads converting at once deadlocked on a C++ static and the GIL (about 1 process in 5 here)."""
    for _ in range(24):
        res = subprocess.run([sys.executable, "-c", FIRST_CONVERSIONS], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr[-2000:]
