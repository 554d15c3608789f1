"""The command line: outputs, golden parity from the file on disk, and bad input."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from streamtag import Tagger
from streamtag.cli import main
from tests.helpers import (CLIP32, CLIP44, DEMO_CLIP, DYMN04_RANDOM, EFFAT, LABELS_CSV, MN04_GOLDEN, MN04_WEIGHTS,
                           MN10_RANDOM, golden, load_npz, needs_shared, rel_err)

MN04 = ["--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--labels", str(LABELS_CSV), "--device", "cpu"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_npz_output_of_the_default_install_reproduces_the_bundled_golden(tmp_path, isolated_home):
    out = tmp_path / "out.npz"
    res = run("tag", CLIP44, "--model", "mn04_as", "--window", 1, "--hop", 0.5, "--output", out, "--quiet")
    assert res.exit_code == 0, res.output
    g = load_npz(MN04_GOLDEN)
    n = len(g["stereo44k_w1_scores"])
    with np.load(out) as z:
        assert z["scores"].shape == (5, 527) and z["embeddings"].shape == (5, 384)
        assert np.abs(z["scores"][:n] - g["stereo44k_w1_scores"]).max() <= 1e-4
        assert rel_err(z["embeddings"][:n], g["stereo44k_w1_embeddings"]) <= 1e-3
        np.testing.assert_allclose(z["start_s"][:n], g["stereo44k_w1_start_s"])
        assert str(z["model"]) == "mn04_as" and z["labels"][0] == "Speech"


@needs_shared
def test_npz_output_reproduces_the_goldens_from_disk(tmp_path):
    out = tmp_path / "out.npz"
    res = run("tag", EFFAT / "input_44k1_stereo.wav", "--model", "mn10_as", "--weights", MN10_RANDOM,
              "--window", 1, "--hop", 0.5, "--output", out, "--quiet")
    assert res.exit_code == 0, res.output
    g = golden("mn10_as_random", "input_44k1_stereo")
    with np.load(out) as z:
        assert z["scores"].shape == (24, 527) and z["embeddings"].shape == (24, 960)
        assert np.abs(z["scores"] - g["w1_scores"]).max() <= 1e-4
        assert rel_err(z["embeddings"], g["w1_embeddings"]) <= 1e-3
        np.testing.assert_allclose(z["start_s"], g["w1_start_s"])
        np.testing.assert_allclose(z["end_s"], g["w1_end_s"])
        assert z["labels"].shape == (527,) and z["labels"][0] == "Speech"
        assert str(z["model"]) == "mn10_as" and float(z["hop_s"]) == 0.5


@needs_shared
def test_dymn_from_disk_through_the_cli_reproduces_the_goldens(tmp_path):
    out = tmp_path / "dymn.npz"
    res = run("tag", EFFAT / "input_44k1_stereo.wav", "--model", "dymn04_as", "--weights", DYMN04_RANDOM, "--window", 1, "--hop", 0.5, "--output", out, "--quiet")
    assert res.exit_code == 0, res.output
    g = golden("dymn04_as_random", "input_44k1_stereo")
    with np.load(out) as z:
        assert np.abs(z["scores"] - g["w1_scores"]).max() <= 1e-4
        assert rel_err(z["embeddings"], g["w1_embeddings"]) <= 1e-3


def test_ensemble_through_the_cli(tmp_path, random_checkpoint):
    res = run("tag", CLIP32, "--model", "dymn04_as,mn10_as", "--weights",
              f"{random_checkpoint('dymn04_as')},{random_checkpoint('mn10_as')}", "--format", "jsonl", "-o", "-", "--quiet")
    assert res.exit_code == 0, res.output
    first = json.loads(res.stdout.splitlines()[0])
    assert first["model"] == "dymn04_as,mn10_as" and len(first["top"]) == 5


def test_jsonl_and_csv_give_times_and_top_tags(tmp_path, mn04):
    res = run("tag", DEMO_CLIP, *MN04, "--format", "jsonl", "--top-k", 3, "--output", "-")
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.splitlines()]
    assert [x["start_s"] for x in lines] == [0.0, 2.5] and lines[0]["model"] == "mn04_as"
    api = list(Tagger(mn04, device="cpu").tag_file(DEMO_CLIP))  # the same run through the Python API
    for line, r in zip(lines, api):
        assert [t["label"] for t in line["top"]] == [name for name, _ in r.top(3)]
        best = int(np.argmax(r.scores))
        assert line["top"][0]["mid"] == open(LABELS_CSV).read().splitlines()[best + 1].split(",")[1]
    out = tmp_path / "t.csv"
    assert run("tag", DEMO_CLIP, *MN04, "--output", out).exit_code == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 2 * 5 and rows[0]["rank"] == "1" and rows[0]["model"] == "mn04_as"


def test_output_dir_writes_one_file_per_input(tmp_path):
    res = run("tag", CLIP32, CLIP44, *MN04, "--format", "npz", "--output-dir", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "whale_32k_mono_3s.npz", "whale_32k_mono_3s.streamtag.json", "whale_44k1_stereo_2.6s.npz",
        "whale_44k1_stereo_2.6s.streamtag.json"]
    meta = json.loads((tmp_path / "o" / "whale_32k_mono_3s.streamtag.json").read_text())
    assert meta["model"] == "mn04_as" and meta["window_s"] == 10.0 and meta["hop_s"] == 2.5
    assert meta["streamtag_version"]


def test_models_lists_the_registry_and_offline_state():
    res = run("models", "--json")
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["mn04_as"]["local"] == "bundled" and rows["mn10_as"]["local"] == "-"
    assert rows["mn10_as"]["embedding_dim"] == 960
    assert rows["dymn20_as"]["family"] == "dymn" and rows["dymn20_as"]["mAP"] == 49.1
    assert "mn40_as_ext" in run("models").output


@pytest.mark.parametrize("args, message", [
    (["tag", "/nonexistent.wav"], "no such file"),
    (["tag", "{tmp}/empty.wav"], "no audio frames"),
    (["tag", "{tmp}/fake.wav"], "not a readable audio file"),
    (["tag", "{tmp}/no-audio"], "no audio files found in the inputs"),
    (["tag", CLIP32, "--model", "mn10_a"], "unknown model 'mn10_a'; did you mean mn10_as"),
    (["tag", CLIP32, "--model", "mn04_as", "--hop", "0"], "hop must be > 0"),
    (["tag", CLIP32, "--model", "mn04_as", "--window", "-1"], "window must be > 0"),
    (["tag", CLIP32, "--model", "mn04_as", "--format", "npz"], "npz is binary"),
    (["tag", CLIP32, "--model", "mn04_as", "--weights", "{mn10}"], "does not fit"),
    (["tag", CLIP32, "--model", "mn04_as", "--device", "tpu"], "device"),
])
def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path, args, message, random_checkpoint):
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    (tmp_path / "fake.wav").write_bytes(b"RIFF but not really" * 20)
    (tmp_path / "no-audio").mkdir()
    (tmp_path / "no-audio" / "notes.md").write_text("not audio")
    args = [str(a).replace("{tmp}", str(tmp_path)).replace("{mn10}", str(random_checkpoint("mn10_as"))) for a in args]
    res = run(*args)
    assert res.exit_code != 0
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert any(message in ln for ln in lines), err
    assert "Traceback" not in err and len([ln for ln in lines if "error" in ln]) == 1


def test_one_bad_file_does_not_stop_the_others(tmp_path):
    res = run("tag", "/nonexistent.wav", DEMO_CLIP, *MN04, "--format", "jsonl", "-o", "-")
    assert res.exit_code == 1
    assert len([ln for ln in res.stdout.splitlines() if ln.startswith("{")]) == 2
    assert "1 of 2 files failed: /nonexistent.wav" in res.stderr


def console(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "streamtag", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_console_script_offline_falls_back_to_the_bundled_model(tmp_path, isolated_home):
    import os
    env = dict(os.environ)
    res = console("tag", DEMO_CLIP, env=env)
    assert res.returncode == 0, res.stderr
    assert "using the bundled mn04_as" in res.stderr and "streamtag download mn10_as" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and len(res.stderr.strip()) < 100
    assert "Speech" in res.stdout and "Dog" in res.stdout and "model mn04_as" in res.stdout


def test_console_script_named_model_never_falls_back(isolated_home):
    import os
    res = console("tag", CLIP32, "--model", "mn10_as", env=dict(os.environ))
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0
    assert "mn10_as_mAP_471.pt" in res.stderr and str(isolated_home) in res.stderr
    assert "http://127.0.0.1:9/mn10_as_mAP_471.pt" in res.stderr and "Traceback" not in res.stderr


