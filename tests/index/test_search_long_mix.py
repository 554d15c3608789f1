"""Search by example on the shared 60 s mix (eight sources), indexed at 1 s / 0.5 s with mn04_as: the first half
of each source's segment finds the windows of its second half before any other source's."""
import csv
import json

import numpy as np
import pytest

from streamtag.index import Index, tagger_info
from streamtag.pipeline.tagger import Tagger
from tests.helpers import LONG_MIX, needs_shared

pytestmark = needs_shared


def timeline():
    with open(LONG_MIX.with_suffix(".timeline.csv"), newline="") as f:
        return [(float(r["onset_s"]), float(r["offset_s"]), r["label"].split(";")[0]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def mix_index(tmp_path_factory):
    tagger = Tagger("mn04_as", window=1.0, hop=0.5, device="cpu")
    index = Index.create(tmp_path_factory.mktemp("mix") / "ix", tagger_info(tagger))
    index.add_files([str(LONG_MIX)], tagger)
    return index, tagger


def source_of(w, segments):
    """The source a window mostly lies in (None: mostly gap)."""
    for k, (on, off, _) in enumerate(segments):
        if min(w.end_s, off) - max(w.start_s, on) >= 0.5 * (w.end_s - w.start_s):
            return k
    return None


def test_the_first_half_of_each_source_finds_its_second_half(mix_index):
    index, tagger = mix_index
    segments = timeline()
    assert len(segments) == 8
    windows = index.file_windows(str(LONG_MIX))
    per_source = {}
    for k, (on, off, name) in enumerate(segments):
        mid = (on + off) / 2
        second = [w for w in windows if w.start_s >= mid - 1e-6 and w.end_s <= off + 1e-6]
        hits = index.search([f"{LONG_MIX}:{on}-{mid}"], k=len(second))
        query = {w.id for w in index.file_windows(str(LONG_MIX), on, mid)}
        assert query and not query & {h.window.id for h in hits}  # the query's own windows are left out
        per_source[name] = float(np.mean([source_of(h.window, segments) == k for h in hits]))
    print("precision@k per source:", json.dumps(per_source))
    assert np.mean(list(per_source.values())) >= 0.8, per_source


def test_several_examples_combine_by_mean_or_max_and_the_examples_file_can_be_left_out(mix_index, tmp_path):
    index, tagger = mix_index
    segments = timeline()
    dog, rooster = segments[2], segments[3]
    both = [f"{LONG_MIX}:{dog[0]}-{dog[0] + 2}", f"{LONG_MIX}:{rooster[0]}-{rooster[0] + 2}"]
    for how in ("mean", "max"):
        hits = index.search(both, k=10, combine=how)
        assert len(hits) == 10 and all(a.score >= b.score for a, b in zip(hits, hits[1:]))
        found = {source_of(h.window, segments) for h in hits}
        assert found <= {2, 3, None} and {2, 3} <= found, (how, found)
    # scores are exact cosines combined across the examples
    q = index.vectors_of([w.id for e in both for w in index.file_windows(*_range(e))])
    hit = index.search(both, k=1, combine="max")[0]
    assert hit.score == pytest.approx(float((q @ index.vectors_of([hit.window.id])[0]).max()), abs=1e-5)
    assert index.search(both, k=5, exclude_examples_files=True) == []  # the only file is the examples'


def _range(text):
    path, span = text.rsplit(":", 1)
    a, b = span.split("-")
    return path, float(a), float(b)


def test_an_example_from_outside_the_index_is_embedded_and_a_window_id_works_too(mix_index, tmp_path):
    import soundfile as sf
    index, tagger = mix_index
    segments = timeline()
    on, off, _ = segments[7]  # typing
    x, rate = sf.read(LONG_MIX, start=int(on * 44100), stop=int((on + 3) * 44100))
    sf.write(tmp_path / "typing.wav", x, rate)
    hits = index.search([str(tmp_path / "typing.wav")], k=5, tagger=tagger)
    assert all(source_of(h.window, segments) == 7 for h in hits)
    again = index.search([f"#{hits[0].window.id}"], k=3)
    assert hits[0].window.id not in {h.window.id for h in again}
    assert all(source_of(h.window, segments) == 7 for h in again)
