"""The embeddings index: adding (incremental, resumable, one backbone and window), window levels, reading back,
search mechanics and the review files it writes."""
import csv
import io
import json
import sqlite3
import subprocess
import sys
import wave

import numpy as np
import pytest
import soundfile as sf

from streamtag.index import (Example, Hit, Index, IndexFolderError, IndexInfo, IndexMismatch, WindowRow, merge_hits,
                             read_review, tagger_info, write_clips, write_segments_audacity, write_segments_csv,
                             write_segments_jsonl, write_segments_raven)
from streamtag.index.store import IndexStore
from streamtag.pipeline.tagger import Tagger
from tests.helpers import DEMO_CLIP, ROOT

RATE = 16000


@pytest.fixture(scope="module")
def tagger():
    return Tagger("mn04_as", window=1.0, hop=0.5, device="cpu")


def tone_file(path, seconds=6.0, freq=1000.0, level=0.3, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (level * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)
    return str(path)


def test_an_index_holds_every_window_with_its_metadata_and_skips_finished_files(tmp_path, tagger):
    a, b = tone_file(tmp_path / "a.wav", 6.0), tone_file(tmp_path / "b.wav", 3.0, 300.0)
    index = Index.create(tmp_path / "ix", tagger_info(tagger))
    first = index.add_files([a], tagger)
    expected = [r.start_s for r in tagger.tag_file(a)]
    assert first.added == (a,) and first.windows == len(expected) == len(index)
    second = index.add_files([a, b], tagger)  # a is done: only b is new
    assert second.skipped == (a,) and second.added == (b,)
    rows = index.file_windows(a)
    assert [w.start_s for w in rows] == expected and [w.index for w in rows] == list(range(len(expected)))
    assert all(w.end_s == pytest.approx(w.start_s + 1.0) for w in rows)
    # a 0.3-amplitude sine is -13.5 dBFS RMS (20 log10(0.3 / sqrt 2)); the zero-padded last window is quieter
    assert [w.level_db for w in rows[:-2]] == pytest.approx([-13.47] * (len(rows) - 2), abs=0.05)
    index.close()
    again = Index.open(tmp_path / "ix")
    assert len(again) == len(expected) + len(again.file_windows(b)) and again.files() == [a, b]
    vec = again.vectors_of([rows[3].id])[0]
    emb = list(tagger.tag_file(a))[3].embedding
    assert vec == pytest.approx(emb / np.linalg.norm(emb), abs=1e-5)


def test_a_changed_file_is_indexed_again_without_duplicates(tmp_path, tagger):
    a = tone_file(tmp_path / "a.wav", 4.0)
    index = Index.create(tmp_path / "ix", tagger_info(tagger))
    index.add_files([a], tagger)
    tone_file(tmp_path / "a.wav", 6.0)  # rewritten, longer
    assert index.add_files([a], tagger).added == (a,)
    assert len(index) == len(index.file_windows(a)) == len(list(tagger.tag_file(a)))


def test_a_killed_run_resumes_without_duplicates(tmp_path, tagger, monkeypatch):
    """Killed after the vectors were saved but before the metadata committed: reopening drops the orphans and
    the unfinished file, and the next run indexes it once."""
    a, b = tone_file(tmp_path / "a.wav", 4.0), tone_file(tmp_path / "b.wav", 5.0, 500.0)
    index = Index.create(tmp_path / "ix", tagger_info(tagger))
    index.add_files([a], tagger)
    done = len(index)
    calls = []

    def save_then_die(self):
        self._save_vectors()
        calls.append(1)
        raise KeyboardInterrupt  # as a kill between the vectors and the metadata commit
    monkeypatch.setattr(IndexStore, "_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        index.add_files([b], tagger)
    index.db.close()  # the process is gone: nothing more commits
    monkeypatch.undo()
    assert calls
    with sqlite3.connect(tmp_path / "ix" / "meta.sqlite") as db:
        assert db.execute("select count(*) from files where done = 0").fetchone()[0] == 1
    reopened = Index.create(tmp_path / "ix", tagger_info(tagger))
    assert len(reopened) == done and reopened.files() == [a]
    report = reopened.add_files([a, b], tagger)
    assert report.skipped == (a,) and report.added == (b,)
    n_b = len(list(tagger.tag_file(b)))
    assert len(reopened) == done + n_b
    ids = [w.id for w in reopened.file_windows(a) + reopened.file_windows(b)]
    assert len(set(ids)) == len(ids) == len(reopened)
    assert sorted(np.asarray(reopened.vectors.keys).tolist()) == sorted(ids)


def test_a_second_backbone_or_window_is_refused_in_one_line(tmp_path, tagger):
    info = tagger_info(tagger)
    Index.create(tmp_path / "ix", info).close()
    for other in (IndexInfo("mn10_as", "f" * 64, 1.0, 0.5, 960, 32000),
                  IndexInfo(info.model, info.weights_sha256, 2.0, 0.5, info.dim, info.rate),
                  IndexInfo(info.model, "0" * 64, 1.0, 0.5, info.dim, info.rate)):
        with pytest.raises(IndexMismatch) as e:
            Index.create(tmp_path / "ix", other)
        assert "\n" not in str(e.value) and "use another --index folder" in str(e.value)
    other_window = Tagger("mn04_as", window=2.0, hop=1.0, device="cpu")
    with pytest.raises(IndexMismatch, match="2 s windows"):
        Index.open(tmp_path / "ix").add_files([str(DEMO_CLIP)], other_window)


def test_opening_a_folder_without_an_index_says_how_to_make_one(tmp_path):
    with pytest.raises(IndexFolderError, match="streamtag index DATA --index"):
        Index.open(tmp_path)


class Blocks:
    """A file-like source of given blocks."""
    live, overflows, nonfinite, start_utc = False, 0, 0, None

    def __init__(self, blocks):
        self._blocks = blocks

    def blocks(self, rate):
        yield from self._blocks

    def length(self, rate):
        return None

    def close(self):
        pass


@pytest.mark.parametrize("text, expected", [
    ("dog.wav", Example("dog.wav")),
    ("rec/long.flac:12.5-14", Example("rec/long.flac", 12.5, 14.0)),
    ("#1234", Example(window_id=1234)),
    ("C:/x.wav", Example("C:/x.wav")),
])
def test_examples_parse(text, expected):
    assert Example.parse(text) == expected


def _hit(i, file="f.wav", start=None, score=0.5):
    start = 0.5 * i if start is None else start
    return Hit(WindowRow(100 + i, file, i, start, start + 1.0, None, -20.0), score)


@pytest.mark.parametrize("indices, spans", [
    ([0, 1, 2], [(0.0, 2.0)]),  # overlapping windows: one segment
    ([0, 2], [(0.0, 2.0)]),  # touching windows (1 s apart at a 0.5 s hop)
    ([0, 3], [(0.0, 1.0), (1.5, 2.5)]),  # a gap: two segments
    ([5, 0, 1, 9, 10], [(0.0, 1.5), (2.5, 3.5), (4.5, 6.0)]),
])
def test_hits_merge_into_segments_where_their_windows_overlap_or_touch(indices, spans):
    segs = merge_hits([_hit(i) for i in indices])
    assert sorted((s.onset_s, s.offset_s) for s in segs) == spans
    assert sum(s.windows for s in segs) == len(indices)


def test_segments_rank_by_their_best_window_and_keep_files_apart():
    hits = [_hit(0, "a.wav", score=0.6), _hit(1, "a.wav", score=0.9), _hit(0, "b.wav", score=0.95)]
    segs = merge_hits(hits, label="dog")
    assert [(s.file, s.windows, s.score) for s in segs] == [("b.wav", 1, 0.95), ("a.wav", 2, 0.9)]
    assert segs[1].mean == pytest.approx(0.75) and segs[1].label == "dog"


def test_review_files_round_trip_accepts_rejects_and_labels(tmp_path):
    segs = merge_hits([_hit(0, str(tmp_path / "a.wav"), score=0.9), _hit(6, str(tmp_path / "a.wav"), score=0.8),
                       _hit(12, str(tmp_path / "b.wav"), score=0.7)], label="dog")
    path = tmp_path / "hits.csv"
    with open(path, "w", newline="") as f:
        write_segments_csv(f, segs)
    rows = list(csv.DictReader(open(path)))
    assert [r["review"] for r in rows] == ["", "", ""] and rows[0]["label"] == "dog"
    rows[0]["review"], rows[1]["review"], rows[2]["review"] = "accept", "reject", "cat"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    got = read_review(path)
    assert [(r.label, r.onset_s) for r in got] == [("dog", segs[0].onset_s), (None, segs[1].onset_s),
                                                   ("cat", segs[2].onset_s)]
    raven = io.StringIO()
    write_segments_raven(raven, segs, 16000)
    table = list(csv.DictReader(io.StringIO(raven.getvalue()), delimiter="\t"))
    assert [t["Begin Path"] for t in table] == [s.file for s in segs] and "review" in table[0]
    (tmp_path / "hits.txt").write_text(raven.getvalue().replace("\t\n", "\taccept\n", 1))
    assert [r.label for r in read_review(tmp_path / "hits.txt")] == ["dog"]
    jl = io.StringIO()
    write_segments_jsonl(jl, segs)
    assert [json.loads(x)["score"] for x in jl.getvalue().splitlines()] == [0.9, 0.8, 0.7]
    aud = io.StringIO()
    write_segments_audacity(aud, segs, file=segs[0].file)
    assert aud.getvalue().count("\n") == 2 and aud.getvalue().startswith("0.000000\t1.000000\tdog (0.90)")


def test_clips_hold_each_segments_audio(tmp_path):
    a = tone_file(tmp_path / "a.wav", 6.0)
    segs = merge_hits([_hit(2, a), _hit(3, a)])
    (clip,) = write_clips(segs, tmp_path / "clips", 32000)
    with wave.open(clip) as w:
        assert w.getframerate() == 32000 and w.getnframes() == pytest.approx(1.5 * 32000, abs=2)


def test_indexing_a_long_file_keeps_rss_flat(tmp_path):
    """12 minutes at a 0.5 s hop (1439 windows): RSS after the first fifth grows by little more than the
    vectors themselves (the pipeline keeps nothing per window); the 1-hour run is in docs/search.md."""
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "index_rss.py"), "--minutes", "12"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout)
    assert m["windows"] == 1439  # (720 s - 1 s) / 0.5 s + 1
    print(m)
    assert m["growth_mb"] < m["vectors_mb"] + 25, m


def test_the_vector_library_is_imported_only_when_an_index_is_opened(tmp_path):
    code = ("import sys, streamtag, streamtag.index, streamtag.cli; from streamtag import Index\n"
            "assert 'usearch' not in sys.modules, 'usearch imported'\nprint('ok')")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "ok", res.stderr
