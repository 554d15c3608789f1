"""Classes from one recording (split in time), training without validation, and the review loop:
index -> search -> a reviewed CSV -> train -> tag."""
import csv
import importlib.util

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings, strategies as st

from streamtag import Tagger, train_head
from streamtag.engines.train import (THRESHOLD_RULE, TrainJob, held_out_stretch, split_windows, time_split)
from streamtag.errors import ConfigError
from streamtag.index import Index, tagger_info, window_segments, write_segments_csv
from streamtag.models.head import load_head
from tests.helpers import ROOT

_spec = importlib.util.spec_from_file_location("train_own_head", ROOT / "demos" / "train_own_head.py")
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)
CLASSES = list(demo.CLASSES)
RATE = demo.RATE


# -- the split -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("starts, window, stretch, sides", [
    # 1 s windows, 0.5 s hop; stretch [3, 5): windows inside validate, windows across its edges are the gap
    ([0, .5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5], 1.0, (3.0, 5.0), [1, 1, 1, 1, 1, 0, 2, 2, 2, 0, 1]),
    # no overlap (hop = window): nothing needs dropping
    ([0, 1, 2, 3, 4], 1.0, (3.0, 5.0), [1, 1, 1, 2, 2]),
    # 2 s windows, 0.5 s hop: the three windows across the edge are dropped
    ([0, .5, 1, 1.5, 2, 2.5, 3, 3.5, 4], 2.0, (3.0, 6.0), [1, 1, 1, 0, 0, 0, 2, 2, 2]),
    # a stretch in the middle
    ([0, 1, 2, 3, 4, 5], 1.5, (2.0, 3.5), [1, 0, 2, 0, 1, 1]),
])
def test_a_time_split_keeps_every_window_on_one_side(starts, window, stretch, sides):
    assert time_split(np.array(starts, float), window, stretch).tolist() == sides


@settings(max_examples=200, deadline=None)
@given(n=st.integers(3, 80), hop=st.sampled_from([0.25, 0.5, 1.0]), window=st.sampled_from([0.5, 1.0, 2.0, 3.0]),
       share=st.floats(0.05, 0.9))
def test_no_moment_of_audio_is_in_a_training_and_a_validation_window(n, hop, window, share):
    starts = np.arange(n) * hop
    positive = np.ones(n, bool)
    try:
        stretch = held_out_stretch(starts, positive, window, share, "c", "f.wav")
    except ConfigError as e:
        assert "--val-share 0" in str(e)
        return
    side = time_split(starts, window, stretch)
    train, val = starts[side == 1], starts[side == 2]
    assert len(train) and len(val)
    assert all(t + window <= v + 1e-9 or v + window <= t + 1e-9 for t in train for v in val)


def test_classes_with_one_recording_are_split_in_time_and_others_by_recording():
    # recording 0: class a only (one recording) - split in time; recordings 1, 2: class b - one validates whole
    starts = [np.arange(20) * 0.5, np.arange(6) * 0.5, np.arange(6) * 0.5]
    targets = [np.tile([1, 0], (20, 1)).astype(np.float32), np.tile([0, 1], (6, 1)).astype(np.float32),
               np.tile([0, 1], (6, 1)).astype(np.float32)]
    sides, stretches = split_windows(targets, starts, 1.0, 0.25, 0, ["a", "b"], ["r0", "r1", "r2"])
    assert set(stretches) == {"a"} and stretches["a"]["file"] == "r0"
    assert stretches["a"]["validation_s"] == [7.5, 10.5]  # the last 5 of 20 windows
    assert sides[0].tolist() == [1] * 14 + [0] + [2] * 5
    assert sorted(s[0] for s in sides[1:]) == [1, 2]


# -- one recording per class ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_each(tmp_path_factory):
    root = tmp_path_factory.mktemp("one")
    data = demo.make_dataset(root / "data", per_class=1, seconds=12.0, seed=5)
    held_out = demo.make_dataset(root / "held_out", per_class=3, seed=99)
    return root, data, held_out


def _window_f1(head, held_out):
    tagger = Tagger(head=head, device="cpu")
    thresholds = dict(zip(CLASSES, load_head(head).info.thresholds))
    f1 = {}
    for c in CLASSES:
        tp = fp = fn = 0
        for kind in (*CLASSES, "_background"):
            for f in sorted((held_out / kind).glob("*.wav")):
                for r in tagger.tag_file(f):
                    hit = r.scores[CLASSES.index(c)] >= thresholds[c]
                    tp, fp, fn = tp + (hit and kind == c), fp + (hit and kind != c), fn + (not hit and kind == c)
        f1[c] = 2 * tp / max(2 * tp + fp + fn, 1)
    return f1


def test_one_recording_per_class_trains_a_head_that_tags_unseen_recordings(one_each):
    root, data, held_out = one_each
    report = train_head([data], output=root / "one.pt", model="mn04_as", window=1.0, hop=0.5, seed=1)
    assert report.validated and set(report.time_split) == set(CLASSES)
    for c in CLASSES:
        a, b = report.time_split[c]["validation_s"]
        assert 0 < a < b <= 12.5 and report.counts[c]["validation_windows"] >= 1
    f1 = _window_f1(root / "one.pt", held_out)
    print("F1 on unseen recordings:", f1)
    assert all(v >= 0.8 for v in f1.values()), f1


def test_without_validation_the_thresholds_follow_the_stated_rule(one_each):
    root, data, held_out = one_each
    report = train_head([data], output=root / "noval.pt", model="mn04_as", window=1.0, hop=0.5, seed=1,
                        val_share=0.0)
    assert not report.validated and report.validation == {} and report.threshold_rule == THRESHOLD_RULE
    assert load_head(root / "noval.pt").info.thresholds == (0.5, 0.5, 0.5)
    assert report.validation_recordings == [] and all(report.counts[c]["validation_windows"] == 0 for c in CLASSES)
    assert all(v >= 0.8 for v in _window_f1(root / "noval.pt", held_out).values())


def test_what_is_still_impossible_says_what_to_do(tmp_path):
    (tmp_path / "d" / "doorbell").mkdir(parents=True)
    (tmp_path / "d" / "siren").mkdir()
    sf.write(tmp_path / "d" / "siren" / "a.wav", np.zeros(RATE, np.float32), RATE)
    with pytest.raises(ConfigError, match="doorbell: no recording of doorbell: put at least one audio file"):
        TrainJob.from_options([tmp_path / "d"], output=tmp_path / "h.pt")
    (tmp_path / "d" / "doorbell").rmdir()
    with pytest.raises(ConfigError, match=r"siren: its only recording .* too few .* or train with --val-share 0"):
        train_head([tmp_path / "d"], output=tmp_path / "h.pt", model="mn04_as", window=1.0, hop=0.5)


# -- the review loop ---------------------------------------------------------------------------------------------
def _archive(root, seed):
    """Two 30 s recordings of 3 s chunks (beep, click, hiss, background) and where the beeps are."""
    rng = np.random.default_rng(seed)
    truth = {}
    for i in range(2):
        kinds = list(rng.permutation(["beep", "click", "hiss", "_background"] * 2)) + ["beep", "hiss"]
        path = root / f"rec{i}.wav"
        sf.write(path, np.concatenate([demo.sound(k, 3.0, rng) for k in kinds]), RATE)
        truth[str(path)] = [(3.0 * j, 3.0 * j + 3.0) for j, k in enumerate(kinds) if k == "beep"]
    return truth


def _is_beep(seg, truth):
    return any(min(seg.offset_s, b) - max(seg.onset_s, a) >= 0.5 * (seg.offset_s - seg.onset_s)
               for a, b in truth[seg.file])


def test_the_review_loop_runs_end_to_end(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    truth = _archive(archive, 7)
    tagger = Tagger("mn04_as", window=1.0, hop=0.5, device="cpu")
    index = Index.create(tmp_path / "ix", tagger_info(tagger))
    index.add_files(sorted(truth), tagger)
    rng = np.random.default_rng(1)
    sf.write(tmp_path / "beep.wav", demo.sound("beep", 2.0, rng), RATE)
    hits = index.search([str(tmp_path / "beep.wav")], k=60, tagger=tagger)
    segments = window_segments(hits, label="beep")  # reviewed window by window
    path = tmp_path / "hits.csv"
    with open(path, "w", newline="") as f:
        write_segments_csv(f, segments)
    rows = list(csv.DictReader(open(path)))
    for row, seg in zip(rows, segments):  # the reviewer listens and marks each hit
        row["review"] = "accept" if _is_beep(seg, truth) else "reject"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    verdicts = [r["review"] for r in rows]
    assert "accept" in verdicts and "reject" in verdicts, verdicts
    report = train_head(sorted(truth), annotations=[path], output=tmp_path / "beep.pt", model="mn04_as",
                        window=1.0, hop=0.5, seed=0)
    assert report.classes == ["beep"]
    unseen_root = tmp_path / "unseen"
    unseen_root.mkdir()
    unseen = _archive(unseen_root, 123)
    head = Tagger(head=tmp_path / "beep.pt", device="cpu")
    threshold = load_head(tmp_path / "beep.pt").info.thresholds[0]
    tp = fp = fn = 0
    for f, beeps in unseen.items():
        for r in head.tag_file(f):
            is_beep = any(min(r.end_s, b) - max(r.start_s, a) >= 0.5 for a, b in beeps)
            hit = r.scores[0] >= threshold
            tp, fp, fn = tp + (hit and is_beep), fp + (hit and not is_beep), fn + (not hit and is_beep)
    assert 2 * tp / (2 * tp + fp + fn) >= 0.8, (tp, fp, fn)
    # the next round: the windows the head is least sure about
    unsure = index.uncertain(load_head(tmp_path / "beep.pt"), k=10)
    assert len(unsure) == 10 and all(0 <= h.score <= 1 for h in unsure)
    assert [h.score for h in unsure] == sorted((h.score for h in unsure), reverse=True)
