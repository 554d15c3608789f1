"""The Ray engine on a local Ray instance: same results as one machine, failures reported, resume, retries."""
import json
import os

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from streamtag.cli import main
from streamtag.engines.job import EngineOptions
from streamtag.engines.ray_engine import SUMMARY_FILE, tag_archive
from streamtag.models import ModelChoice, RunTarget
from streamtag.outputs.recording import OutputOptions
from tests.engines import ray_crash
from tests.helpers import DEMO_CLIP, LABELS_CSV, MN04_WEIGHTS

ray = pytest.importorskip("ray")  # the [ray] extra; installed by the test extra and CI

pytestmark = pytest.mark.slow  # starts Ray: ~30 s


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    marker = tmp_path_factory.mktemp("crash") / "crash-once"
    marker.write_text("the first shard's worker dies once")
    os.environ[ray_crash.CRASH_ONCE_ENV] = str(marker)  # inherited by the Ray workers started below
    ray.cloudpickle.register_pickle_by_value(ray_crash)  # the workers need not import the tests package
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"worker_process_setup_hook": ray_crash.install})
    yield marker
    ray.shutdown()
    os.environ.pop(ray_crash.CRASH_ONCE_ENV, None)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    demo, sr = sf.read(DEMO_CLIP, dtype="float32")
    x = np.concatenate([demo, demo, demo])[:sr * 30]  # the demo clip looped to 30 s
    (root / "field").mkdir()
    sf.write(root / "field" / "long.wav", x, sr)  # 30 s: 59 windows of 1 s / 0.5 s, 8 shards of 8
    sf.write(root / "short.flac", x[sr * 3:sr * 5], sr)
    (root / "corrupt.wav").write_bytes(b"RIFF" + b"\x00" * 200)
    return root


MODEL = ["--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--labels", str(LABELS_CSV), "--device", "cpu",
         "--window", "1", "--hop", "0.5", "--format", "npz,jsonl"]


def test_ray_run_equals_one_machine_reports_the_corrupt_file_and_resumes(local_ray, archive, tmp_path):
    single, cluster = tmp_path / "single", tmp_path / "ray"
    res = CliRunner().invoke(main, ["tag", str(archive), *MODEL, "--output-dir", str(single), "--quiet"])
    assert res.exit_code == 1 and "corrupt.wav" in res.output  # the local engine reports it too

    res = CliRunner().invoke(main, ["tag", str(archive), *MODEL, "--output-dir", str(cluster), "--engine", "ray",
                                    "--shard-windows", "8"])
    assert res.exit_code == 1, res.output
    assert "2 tagged, 0 already complete, 1 failed of 3 files" in res.output
    assert "corrupt.wav: neither libsndfile (not a readable audio file" in res.output
    assert not local_ray.exists()  # a worker died on its first shard and Ray retried it
    for stem in ("long", "short"):
        with np.load(single / f"{stem}.npz") as a, np.load(cluster / f"{stem}.npz") as b:
            assert a["scores"].shape == b["scores"].shape
            assert np.abs(a["scores"] - b["scores"]).max() <= 1e-4
            np.testing.assert_allclose(a["start_s"], b["start_s"])
            np.testing.assert_allclose(b["embeddings"], a["embeddings"], rtol=1e-3, atol=1e-4)
        rows = lambda d: [json.loads(ln) for ln in (d / f"{stem}.jsonl").read_text().splitlines()]  # noqa: E731
        assert [r["window"] for r in rows(cluster)] == [r["window"] for r in rows(single)]
        assert [[t["label"] for t in r["top"][:1]] for r in rows(cluster)] == \
            [[t["label"] for t in r["top"][:1]] for r in rows(single)]
    with np.load(cluster / "long.npz") as z:
        assert len(z["start_s"]) == 59
    summary = json.loads((cluster / SUMMARY_FILE).read_text())
    assert summary["files"] == 3 and summary["completed"] == 2 and summary["windows"] == 59 + 3
    assert summary["shards"] == 8 + 1 and summary["failed"][0]["path"].endswith("corrupt.wav")
    assert summary["windows_per_s"] > 0

    before = (cluster / "long.npz").stat().st_mtime_ns
    again = tag_archive([archive], cluster, model=ModelChoice.parse("mn04_as", MN04_WEIGHTS), window=1.0, hop=0.5,
                        labels=str(LABELS_CSV), target=RunTarget("cpu"), outputs=OutputOptions(formats=("npz", "jsonl")),
                        engine=EngineOptions(engine="ray", shard_windows=8))
    assert sorted(os.path.basename(p) for p in again.skipped) == ["long.wav", "short.flac"]
    assert again.completed == 0 and len(again.failed) == 1 and again.shards == 0
    assert (cluster / "long.npz").stat().st_mtime_ns == before


def test_ray_engine_needs_an_output_dir(archive):
    res = CliRunner().invoke(main, ["tag", str(archive), "--engine", "ray"])
    assert res.exit_code == 1 and "the ray engine writes one set of files per input: give an output folder" in res.output


def test_ray_events_end_where_the_audio_ends_as_on_one_machine(local_ray, archive, tmp_path):
    common = ["--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--labels", str(LABELS_CSV), "--device", "cpu",
              "--events", "--format", "jsonl", "--threshold", "0.1", "--quiet"]
    short = archive / "short.flac"  # 2 s: one 10 s window, mostly padding
    for engine in ("local", "ray"):
        res = CliRunner().invoke(main, ["tag", str(short), *common, "--output-dir", str(tmp_path / engine),
                                        "--engine", engine])
        assert res.exit_code == 0, res.output
    events = {e: [json.loads(ln) for ln in (tmp_path / e / "short.events.jsonl").read_text().splitlines()]
              for e in ("local", "ray")}
    assert events["local"] and max(ev["offset_s"] for ev in events["local"]) == pytest.approx(2.0)
    assert [(ev["label"], ev["onset_s"], ev["offset_s"]) for ev in events["ray"]] == \
        [(ev["label"], ev["onset_s"], ev["offset_s"]) for ev in events["local"]]
    assert json.loads((tmp_path / "ray" / SUMMARY_FILE).read_text())["audio_s"] == pytest.approx(2.0)


def test_sigterm_stops_the_ray_driver_keeping_finished_files(archive, tmp_path, isolated_home):
    """The driver in its own process (starting its own Ray): SIGTERM once the first file is written."""
    import signal
    import subprocess
    import sys
    import time
    folder = tmp_path / "in"
    folder.mkdir()
    demo, sr = sf.read(DEMO_CLIP, dtype="float32")
    sf.write(folder / "a_short.wav", demo[: 2 * sr], sr)  # done first (one worker takes shards in order)
    sf.write(folder / "b_long.wav", np.tile(demo, (24, 1)), sr)  # 5 minutes: still running at the signal
    out = tmp_path / "out"
    env = dict(os.environ, STREAMTAG_HOME=str(isolated_home))
    proc = subprocess.Popen([sys.executable, "-m", "streamtag", "tag", str(folder), *MODEL, "--output-dir", str(out),
                             "--engine", "ray", "--shard-windows", "16", "--workers", "1"],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not list(out.glob("*.streamtag.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-3000:]
    assert err.strip().splitlines()[-1] == "streamtag: interrupted"
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["interrupted"] and summary["completed"] == 1
    assert not (out / "b_long.npz").exists()
    for stem in (p.name.split(".")[0] for p in out.glob("*.streamtag.json")):
        assert (out / f"{stem}.npz").is_file() and (out / f"{stem}.jsonl").is_file()
    assert not list(out.glob("*.partial"))


def test_a_head_runs_on_ray_as_on_one_machine(local_ray, archive, tmp_path):
    import torch
    from streamtag.models.head import Head, HeadInfo, head_payload
    torch.manual_seed(0)
    head = tmp_path / "three.pt"
    torch.save(head_payload(Head(HeadInfo(classes=("a", "b", "c"), backbone="mn04_as", backbone_sha256=None,
                                          window_s=1.0, hop_s=0.5, embedding_dim=384, thresholds=(0.5,) * 3))), head)
    args = [str(archive / "short.flac"), "--head", str(head), "--weights", str(MN04_WEIGHTS), "--labels",
            str(LABELS_CSV), "--device", "cpu", "--format", "npz", "--quiet"]
    for engine in ("local", "ray"):
        res = CliRunner().invoke(main, ["tag", *args, "--output-dir", str(tmp_path / engine), "--engine", engine,
                                        "--model", "mn04_as"])
        assert res.exit_code == 0, res.output
    with np.load(tmp_path / "local" / "short.npz") as a, np.load(tmp_path / "ray" / "short.npz") as b:
        assert a["labels"].tolist() == b["labels"].tolist() == ["a", "b", "c"]
        assert np.abs(a["scores"] - b["scores"]).max() <= 1e-4 and str(b["model"]) == "mn04_as+three"
