"""The model contract: families plug in as one module, networks declare what they offer, models compose."""
import dataclasses
import warnings

import numpy as np
import pytest
import torch

from streamtag import Tagger
from streamtag.errors import ConfigError, UnknownModelError
from streamtag.models import (FAMILY_MODULES, REGISTRY, Family, Network, Registry, SingleModel,
                              TaggingModel, create_model, get_spec)
from streamtag.models import loader
from streamtag.models.labels import Labels
from tests.models import toy_family

TOY_LABELS = Labels(("/t/quiet", "/t/loud"), ("Quiet", "Loud"))


@pytest.fixture
def with_toy_family(monkeypatch):
    """The registry as it is once toy_family.py is listed in catalog.FAMILY_MODULES."""
    registry = Registry([*(m.FAMILY for m in FAMILY_MODULES), toy_family.FAMILY])
    monkeypatch.setattr(loader, "REGISTRY", registry)
    monkeypatch.setattr(loader, "get_spec", registry.get)
    return registry


def test_a_family_in_one_module_runs_through_the_whole_pipeline(with_toy_family):
    model = create_model("loudness_toy", pretrained=False, labels=TOY_LABELS)
    assert isinstance(model, TaggingModel) and model.has_scores and model.has_frames
    rng = np.random.default_rng(0)
    quiet, loud = 0.001 * rng.standard_normal(16000), 0.5 * rng.standard_normal(16000)
    tagger = Tagger(model, window=1.0, hop=1.0, device="cpu", labels=TOY_LABELS, frames=True)
    results = list(tagger.tag_array(np.concatenate([quiet, loud]).astype(np.float32), 16000))
    assert [r.top(1)[0][0] for r in results] == ["Quiet", "Loud"]
    assert results[1].frames.shape == (100, 1)
    np.testing.assert_allclose(results[1].frame_times, 1.0 + np.arange(100) * 0.01)


def test_registry_refuses_duplicates_and_strays():
    spec = toy_family.FAMILY.entries[0]
    with pytest.raises(ConfigError, match="declared twice"):
        Registry([toy_family.FAMILY, toy_family.FAMILY])
    with pytest.raises(ConfigError, match="model 'loudness_toy' is declared twice"):
        Registry([toy_family.FAMILY, Family("other", toy_family.build, (dataclasses.replace(spec, family="other"),))])
    with pytest.raises(ConfigError, match="entries of another family"):
        Family("other", toy_family.build, (spec,))
    with pytest.raises(UnknownModelError, match="no model family 'loudness'"):
        REGISTRY.family(spec)  # not listed in the catalog


def test_every_catalog_family_declares_only_its_own_entries():
    for module in FAMILY_MODULES:
        family = module.FAMILY
        assert family.entries and all(s.family == family.name for s in family.entries)
        for s in family.entries:  # a typed, frozen config (dymn shares EfficientAT's from mobilenet)
            assert dataclasses.is_dataclass(s.config) and type(s.config).__dataclass_params__.frozen, s.name
    assert list(REGISTRY.models) == [s.name for m in FAMILY_MODULES for s in m.FAMILY.entries]


@pytest.mark.parametrize("family, network", [("mobilenet", "MobileNetAT"), ("dymn", "DyMN"), ("beats", "BEATs"),
                                             ("ssast", "SSAST"), ("atstframe", "ATSTFrame"), ("eat", "EATNetwork")])
def test_a_family_declares_what_its_network_class_does(family, network):
    """`Family.exportable` (read without torch) is its network's `exportable`; exportable configs have a numpy
    front-end; the network class is reachable from the family package."""
    import importlib
    module = importlib.import_module(f"streamtag.models.{family}")
    cls = getattr(module, network)
    assert cls is vars(importlib.import_module(f"streamtag.models.{family}.network"))[network]
    assert module.FAMILY.exportable is cls.exportable
    if module.FAMILY.exportable:
        assert all(callable(s.config.numpy_frontend) for s in module.FAMILY.entries)


@pytest.mark.parametrize("name", ["mn04_as", "dymn04_as", "beats_iter3", "ssast_tiny_patch_400", "atstframe_small",
                                  "eat_base_epoch10"])
def test_networks_declare_their_capabilities_and_models_follow_them(name):
    model = create_model(name, pretrained=False)
    network = model.network
    assert isinstance(network, Network)
    assert model.has_scores == network.has_scores == get_spec(name).has_scores
    assert model.has_frames == network.has_frames == (get_spec(name).frame_dim is not None)
    assert network.masks_padding == (name == "beats_iter3")
    assert network.freezable == (name == "mn04_as")
    times = model.frame_times(16000)
    if model.has_frames:
        assert np.allclose(np.diff(times), get_spec(name).frame_hop_s)
    else:
        assert times is None


def test_cpu_optimisation_is_a_new_model_and_leaves_the_original_eager(mn04):
    wave = torch.from_numpy(np.random.default_rng(1).standard_normal((3, 32000)).astype(np.float32) * 0.1)
    optimized = mn04.optimized_for(wave[:1])
    assert optimized is not mn04 and optimized.frozen and not mn04.frozen
    assert optimized.network is mn04.network  # the modules are shared, not copied
    with torch.inference_mode():
        a, b = mn04(wave), optimized(wave)
    assert torch.allclose(a.logits, b.logits, atol=1e-4) and torch.allclose(a.embedding, b.embedding, atol=1e-4)
    assert optimized.optimized_for(wave[:1]) is optimized


def test_shared_frame_windows_equal_stacked_windows_for_single_models_and_ensembles(random_checkpoint):
    ensemble = create_model("mn04_as,mn10_as", weights=f"{random_checkpoint('mn04_as')},{random_checkpoint('mn10_as')}")
    span = torch.from_numpy(np.random.default_rng(2).standard_normal(32000 + 3 * 8000).astype(np.float32) * 0.1)
    with torch.inference_mode():
        for model in (ensemble.members[0], ensemble):
            shared = model.forward_windows(span, 4, 8000, 32000)
            stacked = model(torch.stack([span[k * 8000:k * 8000 + 32000] for k in range(4)]))
            assert (shared.logits - stacked.logits).abs().max() <= 1e-4
            assert (shared.embedding - stacked.embedding).abs().max() <= 1e-4
    assert ensemble.spec.family == "ensemble" and ensemble.spec.embedding_dim == 384 + 960
    assert [m.name for m in ensemble.spec.config.members] == ["mn04_as", "mn10_as"]


def test_spec_config_changes_go_through_with_config_and_arch_is_deprecated():
    spec = get_spec("eat_base_epoch10")
    changed = spec.with_config(target_length=1024)
    assert changed.config.target_length == 1024 and spec.config.target_length is None
    model = create_model(changed, pretrained=False)
    assert model.frontend.frames(16000) == 1024
    with pytest.raises(ConfigError, match="eat_base_epoch10"):
        spec.with_config(no_such_field=1)
    with pytest.warns(DeprecationWarning, match="spec.config"):
        arch = spec.arch
    assert arch["target_length"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ConfigError, match=r"with_config\(target_length=1024\)"):
            spec.arch["target_length"] = 1024


def test_builders_take_the_labels_they_are_given(tmp_path, random_checkpoint):
    """A network builder never reads the label file itself (BEATs/EAT map class orders with the labels passed)."""
    model = create_model("mn04_as", pretrained=False, labels=TOY_LABELS)
    assert isinstance(model, SingleModel)  # EfficientAT ignores them; the Tagger checks the class count
    with pytest.raises(ConfigError, match="527 outputs but the label file has 2 classes"):
        Tagger(model, labels=TOY_LABELS, device="cpu")
