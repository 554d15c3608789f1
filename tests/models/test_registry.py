import csv

import pytest
import torch

from streamtag import create_model, list_models
from streamtag.errors import UnknownModelError
from streamtag.models import MODELS, get_spec
from streamtag.models.mobilenet import embedding_dim
from tests.helpers import DYMN04_RANDOM, EFFAT, needs_shared, require_shared


def release_table() -> dict[str, dict]:
    """The fixture's registry.csv: one row per AudioSet model of the EfficientAT release."""
    require_shared()
    return {row["name"]: row for row in csv.DictReader(open(EFFAT / "registry.csv"))}


NAMES = [s.name for s in list_models() if s.family in ("mn", "dymn")]  # every EfficientAT entry


def test_every_release_model_is_registered_with_its_facts():
    release = release_table()
    assert set(release) <= set(MODELS)
    for name in release:
        row, spec = release[name], get_spec(name)
        assert spec.family == row["family"]
        assert spec.config.width_mult == float(row["width_mult"])
        assert spec.embedding_dim == int(row["embedding_dim"]) == embedding_dim(spec.config.width_mult)
        assert spec.config.hop_length == int(row["hop_size"])
        assert spec.config.n_mels == int(row["n_mels"])
        assert spec.file_name == row["official_file_name"] and spec.url == row["url"]
        assert spec.sha256 == (row["sha256"] or None)
        assert spec.mAP == float(row["mAP"])


@pytest.mark.parametrize("name", NAMES)
def test_every_architecture_builds_and_gives_scores_and_its_embedding(name):
    spec = get_spec(name)
    model = create_model(name, pretrained=False)
    n_params = sum(p.numel() for p in model.network.parameters()) / 1e6
    # the release table rounds; its DyMN figures are up to 0.21 % above the counted parameters
    assert n_params == pytest.approx(spec.params_millions, rel=2.5e-3, abs=0.01)
    with torch.inference_mode():
        logits, emb, _ = model(torch.randn(2, 16000) * 0.1)
    assert logits.shape == (2, 527) and emb.shape == (2, spec.embedding_dim)


def test_unknown_model_lists_close_matches():
    with pytest.raises(UnknownModelError, match="did you mean mn10_as"):
        get_spec("mn10_a")


@needs_shared
def test_dymn_checkpoint_layout_loads_strictly():
    """The fixture has the official key set and order (layers.* before in_c)."""
    sd = torch.load(DYMN04_RANDOM, weights_only=True)
    model = create_model("dymn04_as", weights=DYMN04_RANDOM)
    assert list(model.network.state_dict()) == list(sd) and len(sd) == 578


def test_ensemble_averages_logits_and_concatenates_embeddings(random_checkpoint):
    names = "dymn04_as,mn10_as"
    dymn, mn10 = random_checkpoint("dymn04_as"), random_checkpoint("mn10_as")
    e = create_model(names, weights=f"{dymn},{mn10}")
    a = create_model("dymn04_as", weights=dymn)
    b = create_model("mn10_as", weights=mn10)
    assert e.spec.name == names and e.spec.embedding_dim == 384 + 960 and e.spec.sample_rate == 32000
    x = torch.randn(2, 32000) * 0.05
    with torch.inference_mode():
        (le, ee, _), (la, ea, _), (lb, eb, _) = e(x), a(x), b(x)
    torch.testing.assert_close(le, (la + lb) / 2)
    torch.testing.assert_close(ee, torch.cat([ea, eb], 1))


def test_ensemble_errors_name_the_problem(random_checkpoint):
    with pytest.raises(UnknownModelError, match="mn40_as_extt"):
        create_model("mn04_as,mn40_as_extt")
    from streamtag.errors import ConfigError
    with pytest.raises(ConfigError, match="2 ensemble members but 1 weights"):
        create_model("mn04_as,mn10_as", weights=random_checkpoint("mn10_as"))


def test_list_models_filters_by_pattern():
    assert [s.name for s in list_models("mn10_as_mels_*")] == ["mn10_as_mels_40", "mn10_as_mels_64",
                                                               "mn10_as_mels_256"]
    assert len(list_models()) == len(MODELS)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["beats_iter3", "beats_iter3_as2m", "ssast_tiny_patch_400", "ssast_small_patch_400",
                                  "ssast_base_patch_400", "ssast_base_frame_400", "atstframe_small", "atstframe_base",
                                  "eat_base_epoch10", "eat_base_epoch30_as2m"])
def test_transformer_entries_state_the_parameters_of_the_built_architecture(name):
    spec = get_spec(name)
    model = create_model(name, pretrained=False)
    counted = sum(p.numel() for p in model.network.parameters()) / 1e6
    assert counted == pytest.approx(spec.params_millions, abs=0.01)
    assert model.sample_rate == 16000 and model.has_scores == spec.has_scores and model.has_frames
