import csv

import pytest
import torch

from streamtag import create_model, list_models
from streamtag.errors import UnknownModelError
from streamtag.models import MODELS, get_spec
from streamtag.models.mobilenet import embedding_dim
from tests.helpers import EFFAT

RELEASE = {row["name"]: row for row in csv.DictReader(open(EFFAT / "registry.csv"))}
MN_NAMES = [n for n, r in RELEASE.items() if r["family"] == "mn"]


def test_every_mn_release_model_is_registered_with_its_facts():
    for name in MN_NAMES:
        row, spec = RELEASE[name], get_spec(name)
        assert spec.family == "mn"
        assert spec.width_mult == float(row["width_mult"])
        assert spec.embedding_dim == int(row["embedding_dim"]) == embedding_dim(spec.width_mult)
        assert spec.frontend.hop_length == int(row["hop_size"])
        assert spec.frontend.n_mels == int(row["n_mels"])
        assert spec.file_name == row["official_file_name"] and spec.url == row["url"]
        assert spec.sha256 == (row["sha256"] or None)
        assert spec.mAP == float(row["mAP"])


@pytest.mark.parametrize("name", MN_NAMES)
def test_every_architecture_builds_and_gives_scores_and_its_embedding(name):
    spec = get_spec(name)
    model = create_model(name, pretrained=False)
    n_params = sum(p.numel() for p in model.network.parameters()) / 1e6
    assert n_params == pytest.approx(spec.params_millions, abs=0.01)
    with torch.inference_mode():
        logits, emb = model(torch.randn(2, 16000) * 0.1)
    assert logits.shape == (2, 527) and emb.shape == (2, spec.embedding_dim)


def test_unknown_model_lists_close_matches():
    with pytest.raises(UnknownModelError, match="did you mean mn10_as"):
        get_spec("mn10_a")


def test_list_models_filters_by_pattern():
    assert [s.name for s in list_models("mn10_as_mels_*")] == ["mn10_as_mels_40", "mn10_as_mels_64",
                                                               "mn10_as_mels_256"]
    assert len(list_models()) == len(MODELS)
