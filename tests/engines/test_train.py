"""Your own classes: training a head on synthesised sounds, its file, and tagging with it everywhere."""
import csv
import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from streamtag import Tagger, train_head
from streamtag.cli import main
from streamtag.engines.live import ListenJob
from streamtag.engines.train import (Recording, TrainJob, choose_threshold, run_train_job, split_by_recording,
                                     window_targets)
from streamtag.errors import ConfigError, WeightsError
from streamtag.models import ModelChoice, create_model
from streamtag.models.head import Head, HeadInfo, attach_head, head_payload, load_head
from tests.helpers import ROOT

_spec = importlib.util.spec_from_file_location("train_own_head", ROOT / "demos" / "train_own_head.py")
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)
CLASSES = list(demo.CLASSES)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-class head on mn04_as (1 s / 0.5 s), trained once for the module, with its own home."""
    root = tmp_path_factory.mktemp("train")
    home = root / "home"
    old = os.environ.get("STREAMTAG_HOME")
    os.environ["STREAMTAG_HOME"] = str(home)
    try:
        data = demo.make_dataset(root / "data", per_class=6)
        report = train_head([data], output=root / "head.pt", model="mn04_as", window=1.0, hop=0.5, seed=3,
                            plot=str(root / "pr.png"))
        held_out = demo.make_dataset(root / "held_out", per_class=3, seed=99)
    finally:
        if old is None:
            os.environ.pop("STREAMTAG_HOME", None)
        else:
            os.environ["STREAMTAG_HOME"] = old
    return {"root": root, "home": home, "data": data, "head": root / "head.pt", "report": report,
            "held_out": held_out}


def test_training_reaches_f1_on_recordings_it_never_saw(trained):
    report = trained["report"]
    assert report.classes == CLASSES
    assert all(report.validation[c]["f1"] >= 0.9 for c in CLASSES), report.validation
    tagger = Tagger(head=trained["head"], device="cpu")
    assert tagger.labels.names == tuple(CLASSES) and tagger.window.window_s == 1.0
    thresholds = dict(zip(CLASSES, load_head(trained["head"]).info.thresholds))
    for kind in (*CLASSES, "_background"):
        truth = np.array([c == kind for c in CLASSES], bool)
        predicted, expected = [], []
        for f in sorted((trained["held_out"] / kind).iterdir()):
            for r in tagger.tag_file(f):
                predicted.append([r.scores[i] >= thresholds[c] for i, c in enumerate(CLASSES)])
                expected.append(truth)
        predicted, expected = np.array(predicted), np.array(expected)
        for i, c in enumerate(CLASSES):
            tp = (predicted[:, i] & expected[:, i]).sum()
            fp = (predicted[:, i] & ~expected[:, i]).sum()
            fn = (~predicted[:, i] & expected[:, i]).sum()
            if expected[:, i].any():
                assert 2 * tp / (2 * tp + fp + fn) >= 0.9, (kind, c)
            else:
                assert fp <= 0.1 * len(predicted), (kind, c)


def test_the_report_is_saved_beside_the_head_with_counts_and_a_plot(trained):
    saved = json.loads(trained["head"].with_suffix(".json").read_text())
    assert saved["classes"] == CLASSES and saved["backbone"] == "mn04_as"
    for c in CLASSES:
        assert set(saved["validation"][c]) >= {"precision", "recall", "f1", "average_precision", "threshold"}
        counts = saved["counts"][c]
        assert counts["train_recordings"] >= 1 and counts["validation_recordings"] >= 1
        assert counts["train_windows"] > 0 and counts["validation_windows"] > 0
    assert (trained["root"] / "pr.png").stat().st_size > 1000


def test_validation_never_shares_a_recording_with_training(trained):
    report = trained["report"]
    assert not set(report.train_recordings) & set(report.validation_recordings)
    assert len(report.train_recordings) + len(report.validation_recordings) == 24


@pytest.mark.parametrize("per_class, share", [(2, 0.25), (3, 0.5), (6, 0.25), (10, 0.1)])
def test_the_split_puts_every_class_on_both_sides(per_class, share):
    targets = [np.eye(3, dtype=np.float32)[[c] * 4] for c in range(3) for _ in range(per_class)]
    val = split_by_recording(targets, share, seed=1)
    for c in range(3):
        holders = [i for i, t in enumerate(targets) if t[:, c].any()]
        assert val[holders].any() and not val[holders].all()


def test_a_second_run_reads_the_embeddings_from_the_cache(trained, monkeypatch):
    monkeypatch.setenv("STREAMTAG_HOME", str(trained["home"]))
    job = TrainJob.from_options([trained["data"]], output=trained["root"] / "other.pt", model="mn04_as", hidden=16,
                                seed=3)
    report = run_train_job(job)
    assert report.cache == {"hits": 24, "misses": 0}
    first = torch.load(trained["root"] / "other.pt", weights_only=True)["state"]
    again = run_train_job(job)  # the same data and seed: the same head
    second = torch.load(trained["root"] / "other.pt", weights_only=True)["state"]
    assert again.thresholds == report.thresholds
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    run_train_job(dataclasses.replace(job, seed=4))  # another seed: another initialisation and order
    third = torch.load(trained["root"] / "other.pt", weights_only=True)["state"]
    assert not all(torch.equal(first[k], third[k]) for k in first)


@pytest.mark.parametrize("scores, truth, target, expected", [
    ([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0], None, 0.55),  # midway between the last positive and the first negative
    ([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0], None, 0.4),  # F1 best with both positives in
    ([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0], 1.0, 0.85),  # precision 1 only above the negative at 0.8
    ([0.9, 0.8], [0, 0], None, 0.5),  # no positives: the neutral default
])
def test_thresholds_are_chosen_on_validation(scores, truth, target, expected):
    assert choose_threshold(np.array(scores), np.array(truth, np.float32), target) == pytest.approx(expected)


@pytest.mark.parametrize("segments, expected", [
    ([(0.0, 1.0, "beep")], [1, 1, 0, 0]),  # windows [0,1) [0.5,1.5): 1.0 and 0.5 of a 1 s segment
    ([(1.2, 1.4, "beep")], [0, 1, 1, 0]),  # a 0.2 s segment inside windows 1 and 2 only
    ([(2.4, 3.0, "beep")], [0, 0, 0, 0]),  # overlaps window 3 by 0.1 s of its 0.6 s: too little
    ([(0.0, 0.3, "beep"), (1.6, 2.5, "click")], [1, 0, 0, 0]),
])
def test_annotated_windows_are_positive_when_they_overlap_enough(segments, expected):
    rec = Recording("x.wav", segments=tuple(segments), annotated=True)
    y = window_targets(rec, np.array([0.0, 0.5, 1.0, 1.5]), 1.0, ["beep", "click"], 0.5)
    assert y[:, 0].tolist() == expected


def _long_recordings(root, n=4):
    """Recordings of beep, quiet, click, quiet, hiss (3 s each) with their annotations, alternately as a Raven
    selection table and an Audacity label track."""
    rng = np.random.default_rng(5)
    root.mkdir()
    order = [("beep", 0.0), ("_background", 3.0), ("click", 6.0), ("_background", 9.0), ("hiss", 12.0)]
    annotations = []
    for i in range(n):
        x = np.concatenate([demo.sound(k, 3.0, rng) for k, _ in order])
        sf.write(root / f"rec{i}.wav", x, demo.RATE)
        events = [(t, t + 3.0, k) for k, t in order if k != "_background"]
        if i % 2 == 0:
            path = root / f"rec{i}.Table.1.selections.txt"
            with open(path, "w", newline="") as f:
                w = csv.writer(f, delimiter="\t")
                w.writerow(["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                            "High Freq (Hz)", "Annotation"])
                for j, (on, off, k) in enumerate(events, 1):
                    w.writerow([j, "Spectrogram 1", 1, on, off, 0, 8000, k])
        else:
            path = root / f"rec{i}.txt"
            path.write_text("".join(f"{on}\t{off}\t{k}\n" for on, off, k in events))
        annotations.append(path)
    return annotations


def test_training_from_recordings_with_raven_tables_and_audacity_tracks(tmp_path):
    annotations = _long_recordings(tmp_path / "long")
    res = CliRunner().invoke(main, ["train", str(tmp_path / "long"), *sum((["--annotations", str(a)]
                                                                            for a in annotations), []),
                                    "--model", "mn04_as", "-o", str(tmp_path / "head.pt"), "--json", "--quiet"])
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["classes"] == CLASSES
    assert all(report["validation"][c]["f1"] >= 0.8 for c in CLASSES), report["validation"]
    assert all(report["counts"][c]["validation_windows"] > 0 for c in CLASSES)


def test_a_csv_with_a_file_column_annotates_several_recordings(tmp_path):
    _long_recordings(tmp_path / "long", n=2)
    table = tmp_path / "all.csv"
    table.write_text("file,onset,offset,label\n" + "".join(
        f"long/rec{i}.wav,{t},{t + 3},{k}\n" for i in range(2) for k, t in (("beep", 0), ("click", 6))))
    job = TrainJob.from_options([tmp_path / "long"], output=tmp_path / "h.pt", annotations=[table])
    segs = {os.path.basename(r.path): r.segments for r in job.recordings}
    assert segs["rec0.wav"] == ((0.0, 3.0, "beep"), (6.0, 9.0, "click"))
    assert job.classes == ("beep", "click")


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "Invalid value for '--epochs'"),
    (["-o", "head.bin"], "the head file must end in .pt"),
    (["--val-share", "1.5"], "the validation share in [0, 1)"),
])
def test_bad_training_options_are_one_line(tmp_path, trained, args, message):
    res = CliRunner().invoke(main, ["train", str(trained["data"]), "-o", str(tmp_path / "h.pt"), *args])
    assert res.exit_code != 0 and message in res.stderr and "Traceback" not in res.stderr


def test_a_class_whose_only_recording_is_too_short_to_split_says_what_to_do(tmp_path):
    (tmp_path / "d" / "doorbell").mkdir(parents=True)
    sf.write(tmp_path / "d" / "doorbell" / "a.wav", np.zeros(16000, np.float32), 16000)
    res = CliRunner().invoke(main, ["train", str(tmp_path / "d"), "-o", str(tmp_path / "h.pt"), "--model", "mn04_as",
                                    "--window", "1", "--hop", "0.5"])
    assert res.exit_code == 1 and "doorbell: its only recording" in res.stderr and "--val-share 0" in res.stderr


# -- the head file ---------------------------------------------------------------------------------------------
def _head(tmp_path, **changes):
    info = HeadInfo(**{**dict(classes=("a", "b"), backbone="mn04_as", backbone_sha256=None, window_s=1.0, hop_s=0.5,
                              embedding_dim=384, thresholds=(0.5, 0.5)), **changes})
    path = tmp_path / "h.pt"
    torch.save(head_payload(Head(info)), path)
    return path


def test_a_head_loads_with_weights_only_and_describes_itself(trained):
    raw = torch.load(trained["head"], weights_only=True)
    assert raw["format"] == "streamtag-head/1" and raw["classes"] == CLASSES and raw["backbone"] == "mn04_as"
    assert raw["embedding_dim"] == 384 and raw["window_s"] == 1.0 and len(raw["thresholds"]) == 3
    assert len(raw["backbone_sha256"]) == 64 and raw["streamtag_version"]


def test_a_head_carrying_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "streamtag-head/1", "hook": ConfigError("pickled object")}, path)
    with pytest.raises(WeightsError, match="carries pickled code"):
        load_head(path)


@pytest.mark.parametrize("changes, model, window, message", [
    ({}, "mn10_as", 1.0, "was trained on mn04_as embeddings, not mn10_as: use --model mn04_as"),
    ({"embedding_dim": 100}, "mn04_as", 1.0, "expects 100-d embeddings; mn04_as gives 384-d"),
    ({"backbone_sha256": "0" * 64}, "mn04_as", 1.0, "was trained on other mn04_as weights"),
    ({}, "mn04_as", 2.0, "was trained on 1 s windows; tag with --window 1"),
])
def test_a_head_on_another_backbone_or_window_is_refused(tmp_path, changes, model, window, message):
    path = _head(tmp_path, **changes)
    backbone = create_model(model, pretrained=model == "mn04_as")
    with pytest.raises((ConfigError, WeightsError), match=message.replace("(", r"\(")):
        attach_head(backbone, path if "embedding_dim" not in changes else load_head(path), window_s=window)


def test_the_cli_refuses_a_mismatched_head_in_one_line(tmp_path, trained):
    clip = next((trained["held_out"] / "beep").iterdir())
    res = CliRunner().invoke(main, ["tag", str(clip), "--head", str(trained["head"]), "--window", "2"])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines() == [f"streamtag: error: {trained['head']} was trained on 1 s windows; "
                                               "tag with --window 1"]
    res = CliRunner().invoke(main, ["tag", str(clip), "--head", str(tmp_path / "none.pt")])
    assert res.exit_code == 1 and "head file not found" in res.stderr


# -- tagging with a head, everywhere ---------------------------------------------------------------------------
def test_every_output_events_and_filters_work_with_the_heads_classes(tmp_path, trained):
    rng = np.random.default_rng(11)
    clip = tmp_path / "mix.wav"
    sf.write(clip, np.concatenate([demo.sound(k, 3.0, rng) for k in ("beep", "_background", "click", "hiss")]),
             demo.RATE)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["tag", str(clip), "--head", str(trained["head"]), "--output-dir", str(out),
                                    "--format", "text,jsonl,csv,npz,audacity,raven", "--plot", str(out / "mix.png"),
                                    "--exclude", "hiss", "--device", "cpu"])
    assert res.exit_code == 0, res.stderr
    with np.load(out / "mix.npz") as z:
        assert z["labels"].tolist() == CLASSES and z["scores"].shape == (23, 3)
        head_sha = str(z["head_sha256"])
        assert head_sha == load_head(trained["head"]).info.sha256
        assert str(z["model"]) == "mn04_as+head"
    rows = [json.loads(ln) for ln in (out / "mix.jsonl").read_text().splitlines()]
    shown = {t["label"] for r in rows for t in r["top"]}
    assert shown == {"beep", "click"}  # hiss excluded
    assert "beep" in {t["label"] for t in rows[1]["top"]} and "click" in {t["label"] for t in rows[13]["top"]}
    for name in ("mix.txt", "mix.csv", "mix.labels.txt", "mix.selection.table.txt", "mix.png"):
        assert (out / name).stat().st_size > 0
    audacity = [ln.split("\t") for ln in (out / "mix.labels.txt").read_text().splitlines()]
    assert {a[2].split(" (")[0] for a in audacity} == {"beep", "click"}
    beep = [a for a in audacity if a[2].startswith("beep")]
    assert float(beep[0][0]) == 0.0 and float(beep[0][1]) == pytest.approx(3.0, abs=0.5)
    meta = json.loads((out / "mix.streamtag.json").read_text())
    assert meta["head"]["classes"] == CLASSES and meta["head"]["sha256"] == head_sha
    assert meta["thresholds"]["classes"].keys() == set(CLASSES)  # the head's own thresholds

    events = tmp_path / "events"
    res = CliRunner().invoke(main, ["tag", str(clip), "--head", str(trained["head"]), "--events", "--format",
                                    "jsonl", "--output-dir", str(events), "--device", "cpu"])
    assert res.exit_code == 0, res.stderr
    found = [json.loads(ln) for ln in (events / "mix.events.jsonl").read_text().splitlines()]
    spans = {e["label"]: (e["onset_s"], e["offset_s"]) for e in found}
    assert spans.keys() == set(CLASSES)
    assert spans["beep"][0] == 0.0 and spans["hiss"][1] == pytest.approx(12.0)
    truth = tmp_path / "truth.csv"
    truth.write_text("onset,offset,label\n0,3,beep\n6,9,click\n9,12,hiss\n")
    res = CliRunner().invoke(main, ["eval", str(events / "mix.events.jsonl"), "--reference", str(truth), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["overall"]["f1"] == 1.0


def test_append_mode_keeps_the_audioset_scores_beside_the_heads(tmp_path, trained):
    clip = next((trained["held_out"] / "beep").iterdir())
    tagger = Tagger(head=trained["head"], head_mode="append", device="cpu")
    results = list(tagger.tag_file(clip))
    assert len(tagger.labels) == 530 and tagger.labels.names[-3:] == tuple(CLASSES)
    assert results[0].scores.shape == (530,)
    plain = list(Tagger("mn04_as", window=1.0, hop=0.5, device="cpu").tag_file(clip))
    np.testing.assert_allclose(results[0].scores[:527], plain[0].scores, atol=1e-5)
    assert results[0].scores[527] > 0.5  # beep


def test_listen_takes_a_head_with_its_windows_and_thresholds(trained):
    job = ListenJob.create(model=ModelChoice.parse(head=trained["head"]), top_k=5)
    info = load_head(trained["head"]).info
    assert (job.window_s, job.hop_s, job.labels.names[:1]) == (1.0, 0.5, ("Speech",))
    assert job.tags.top_k == 3 and job.tags.per_class == tuple(enumerate(info.thresholds))
    assert job.model.head == str(trained["head"])


@pytest.mark.slow
def test_the_demo_trains_a_head_and_tags_pushed_audio(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "demos" / "train_own_head.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PYTHONPATH=str(ROOT), STREAMTAG_HOME=str(tmp_path / "home")))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert sum("validation F1" in ln for ln in lines) == 3
    tags = [ln.split("s  ")[1].split()[0] for ln in lines if " s  " in ln]
    assert tags[0] == "beep" and "hiss" in tags and tags[-1] == "click"


def test_folder_names_give_several_classes_or_none(tmp_path):
    for folder in ("beep,click", "hiss", "_negative", "_background"):
        (tmp_path / folder).mkdir()
        for i in range(2):
            sf.write(tmp_path / folder / f"{i}.wav", np.zeros(16000, np.float32), 16000)
    job = TrainJob.from_options([tmp_path], output=tmp_path / "h.pt")
    assert job.classes == ("beep", "click", "hiss")
    by_folder = {os.path.basename(os.path.dirname(r.path)): r.classes for r in job.recordings}
    assert by_folder == {"beep,click": ("beep", "click"), "hiss": ("hiss",), "_negative": (), "_background": ()}


def test_sigterm_during_training_writes_no_head(tmp_path, trained):
    env = dict(os.environ, PYTHONPATH=str(ROOT), STREAMTAG_HOME=str(tmp_path / "home"))
    head = tmp_path / "head.pt"
    proc = subprocess.Popen([sys.executable, "-m", "streamtag", "train", str(trained["data"]), "--model", "mn04_as",
                             "-o", str(head)], stderr=subprocess.PIPE, text=True, env=env)
    assert "embedding 24 recordings" in proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "streamtag: interrupted"
    assert not head.exists() and not list(tmp_path.glob("*.partial"))
