"""WindowResult's conveniences: a score by label, and a plain dict that JSON writes."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from streamtag.errors import ConfigError, LabelsError
from streamtag.models import load_labels
from streamtag.pipeline.result import WindowResult

LABELS = load_labels()


def result(scores: np.ndarray | None, **kw) -> WindowResult:
    fields = dict(index=3, start_sample=48000, end_sample=80000, start_s=1.5, end_s=2.5, scores=scores,
                  embedding=np.arange(4, dtype=np.float32) / 7, model="mn04_as", labels=LABELS)
    return WindowResult(**(fields | kw))


SCORES = np.random.default_rng(1).random(len(LABELS)).astype(np.float32)


@pytest.mark.parametrize("name", ["Dog", "dog", "/m/0bt9lr", "Domestic animals, pets", "domestic_animals,_pets"])
def test_score_reads_the_labels_own_entry(name):
    r = result(SCORES)
    assert r.score(name) == float(SCORES[LABELS.index(name)])


def test_score_of_an_unknown_label_names_close_matches():
    with pytest.raises(LabelsError, match="did you mean 'Dog'"):
        result(SCORES).score("Dgo")


def test_score_of_an_embedding_only_model_says_so():
    with pytest.raises(ConfigError, match="embeddings only"):
        result(None, model="beats_iter3").score("Dog")


def test_to_dict_is_json_and_holds_the_results_values():
    start = datetime(2026, 5, 1, 5, 30, tzinfo=timezone.utc)
    r = result(SCORES, stream_start_utc=start, lost_samples=7, latency_s=0.01)
    d = json.loads(json.dumps(r.to_dict(top_k=3)))
    assert (d["index"], d["start_s"], d["end_s"], d["model"], d["lost_samples"]) == (3, 1.5, 2.5, "mn04_as", 7)
    assert d["start_utc"] == "2026-05-01T05:30:01.500Z" and d["end_utc"] == "2026-05-01T05:30:02.500Z"
    assert [t["label"] for t in d["top"]] == [name for name, _ in r.top(3)]
    assert [t["score"] for t in d["top"]] == [s for _, s in r.top(3)]
    assert d["top"][0]["mid"] == LABELS.mids[LABELS.index(d["top"][0]["label"])]
    np.testing.assert_array_equal(np.asarray(d["scores"], np.float32), SCORES)
    np.testing.assert_array_equal(np.asarray(d["embedding"], np.float32), r.embedding)


def test_to_dict_can_leave_the_arrays_out_and_keeps_none_for_unknown_values():
    d = result(None).to_dict(scores=False, embedding=False)
    assert "scores" not in d and "embedding" not in d
    assert d["top"] == [] and d["start_utc"] is None and d["latency_s"] is None
    assert result(None).to_dict()["scores"] is None


def test_to_dict_of_a_tagged_window_matches_its_arrays(mn04):
    from streamtag import Tagger
    from tests.helpers import DEMO_CLIP
    first = next(iter(Tagger(mn04, window=10, hop=2.5).tag_file(DEMO_CLIP)))
    d = first.to_dict()
    assert first.score("Dog") == d["scores"][LABELS.index("Dog")]
    assert len(d["embedding"]) == 384
