"""Golden parity with the official BEATs code (../shared/fixtures/beats), loading the fixture files as they are."""
import dataclasses
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from streamtag import Tagger, create_model
from streamtag.cli import main
from streamtag.errors import WeightsError
from streamtag.models.beats import RELEASED_ARCHITECTURE, BEATs, BeatsConfig, relative_position_buckets
from streamtag.models.labels import load_labels
from streamtag.pipeline.tagger import ShortWindowWarning
from tests.helpers import (MN04_WEIGHTS, MN10_RANDOM, SHARED, demo_wave, fixture_files, load_npz, needs_shared,
                           require_shared)

BEATS = SHARED / "fixtures" / "beats"
PRETRAINED = BEATS / "beats_pretrained_small_random.pt"
FINETUNED = BEATS / "beats_finetuned_small_random.pt"
FILES = {"pretrained": PRETRAINED, "finetuned": FINETUNED}
# The fixtures' reduced architecture (their `cfg`, as stored), for the checkpoints synthesized without ../shared
SMALL_CFG = dict(
    input_patch_size=16, embed_dim=64, conv_bias=False, encoder_layers=2, encoder_embed_dim=128,
    encoder_ffn_embed_dim=512, encoder_attention_heads=4, activation_fn="gelu", layer_wise_gradient_decay_ratio=0.6,
    layer_norm_first=False, deep_norm=True, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
    encoder_layerdrop=0.05, dropout_input=0.0, conv_pos=128, conv_pos_groups=16, relative_position_embedding=True,
    num_buckets=320, max_distance=800, gru_rel_pos=True, finetuned_model=False,
)
SMALL_FINETUNED_CFG = {**SMALL_CFG, "finetuned_model": True, "predictor_dropout": 0.0, "predictor_class": 527}
SHORT = 116813  # valid samples of the batch's second item
# README tolerances
FBANK_MAX, FBANK_MEAN, REL_TOL, LOGIT_TOL, PROB_TOL = 1e-3, 1e-5, 1e-3, 1e-3, 1e-4
CASES = ("single", "batch", "short_alone")


@pytest.fixture(scope="module")
def g():
    require_shared()
    return load_npz(BEATS / "beats_golden.npz")


def synthesize_checkpoint(kind: str, path):
    """A random-weight BEATs file of the fixtures' architecture in the released layout (cfg, model[, label_dict])."""
    cfg = dict(SMALL_FINETUNED_CFG if kind == "finetuned" else SMALL_CFG)
    torch.manual_seed({"pretrained": 0, "finetuned": 1}[kind])
    checkpoint = {"cfg": cfg, "model": BEATs(BeatsConfig.from_cfg(cfg, kind)).state_dict()}
    if kind == "finetuned":  # the release's head order is not the CSV's: a fixed random permutation of the mids
        mids = load_labels().mids
        order = np.random.default_rng(1).permutation(len(mids))
        checkpoint["label_dict"] = {i: mids[j] for i, j in enumerate(order)}
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return fixture_files(FILES, synthesize_checkpoint, tmp_path_factory.mktemp("beats_checkpoints"))


@pytest.fixture(scope="module")
def pretrained(checkpoints):
    return create_model("beats_iter3", weights=checkpoints["pretrained"])


@pytest.fixture(scope="module")
def finetuned(checkpoints):
    return create_model("beats_iter3_as2m", weights=checkpoints["finetuned"])


def layout(checkpoint: dict) -> dict:
    """Entry names, cfg and (shape, dtype) of every tensor: what the loader reads of a file."""
    return {"entries": sorted(checkpoint), "cfg": checkpoint["cfg"],
            "model": {k: (tuple(v.shape), v.dtype) for k, v in checkpoint["model"].items()},
            "label_mids": sorted(checkpoint.get("label_dict", {}).values())}


@needs_shared
@pytest.mark.parametrize("kind", list(FILES))
def test_synthesized_checkpoint_has_the_fixture_layout(kind, tmp_path):
    """The checkpoints used without ../shared stay faithful to the fixture files."""
    ours = torch.load(synthesize_checkpoint(kind, tmp_path / "synth.pt"), weights_only=True)
    theirs = torch.load(FILES[kind], map_location="cpu", weights_only=True)
    assert layout(ours) == layout(theirs)


def case_input(g, case):
    """(waveforms [B, N], valid lengths or None) as the golden case was run."""
    if case == "single":  # an all-False sample mask
        return torch.from_numpy(g["single_wav"]), torch.tensor([96000])
    if case == "batch":
        return torch.from_numpy(g["batch_wav"]), torch.from_numpy(g["batch_lengths"])
    return torch.from_numpy(g["batch_wav"][1:, :SHORT]), None


def rel(ours, golden):
    return float(np.abs(ours - golden).max() / np.abs(golden).max())


def golden_token_mask(g, case):
    return np.zeros(g["short_alone_features"].shape[:2], bool) if case == "short_alone" \
        else g[f"{case}_padding_mask_out"]


@pytest.mark.parametrize("case", ["single", "batch"])
def test_fbank(case, pretrained, g):
    with torch.inference_mode():
        fbank = pretrained.frontend(case_input(g, case)[0]).numpy()
    err = np.abs(fbank - g[f"{case}_fbank"])
    assert fbank.shape == g[f"{case}_fbank"].shape
    assert err.max() <= FBANK_MAX and err.mean() <= FBANK_MEAN
    if case == "batch":  # an all-zero frame of the padding: log(float32 eps), normalised
        assert fbank[1, -1] == pytest.approx(np.full(128, -2.3916929), abs=1e-6)


@pytest.mark.parametrize("case", ["single", "batch"])
@pytest.mark.parametrize("level", ["frame", "token"])
def test_padding_masks(case, level, pretrained, finetuned, g):
    wave, lengths = case_input(g, case)
    n_frames = pretrained.frontend.frames(wave.shape[1])
    for net in (pretrained.network, finetuned.network):
        if level == "frame":
            np.testing.assert_array_equal(net.frame_padding_mask(lengths, n_frames).numpy(),
                                          g[f"{case}_frame_padding_mask"])
        else:
            mask = net.token_padding_mask(lengths, n_frames).numpy()
            np.testing.assert_array_equal(mask, g[f"{case}_padding_mask_out"])
            np.testing.assert_array_equal(mask, g[f"{case}_ft_padding_mask_out"])


@pytest.mark.parametrize("n_samples, length", [
    (160000, SHORT), (96000, 50000), (16000, 9000), (16000, 15999), (24000, 100), (2800, 1000),
    (17003, 12345), (33333, 30000), (48000, 47000)])
def test_mask_arithmetic_follows_the_reference_rule(n_samples, length, pretrained):
    """Sample mask -> frames -> tokens, each by 'drop len % n_out, chunk, padded iff all', for any window length."""
    def reduce(mask, n_out):
        mask = mask[:len(mask) - len(mask) % n_out]
        return mask.reshape(n_out, -1).all(axis=1)
    net = pretrained.network
    n_frames = pretrained.frontend.frames(n_samples)
    frames = reduce(np.arange(n_samples) >= length, n_frames)
    tokens = reduce(frames, (n_frames // 16) * 8)
    lengths = torch.tensor([length])
    np.testing.assert_array_equal(net.frame_padding_mask(lengths, n_frames, n_samples)[0].numpy(), frames)
    np.testing.assert_array_equal(net.token_padding_mask(lengths, n_frames, n_samples)[0].numpy(), tokens)
    if n_samples % 160 == 0:  # the window length the network assumes from the frame count
        np.testing.assert_array_equal(net.token_padding_mask(lengths, n_frames)[0].numpy(), tokens)


@pytest.mark.parametrize("case", ["single", "batch"])
def test_patch_tokens(case, pretrained, g):
    with torch.inference_mode():
        tokens = pretrained.network.patch_tokens(pretrained.frontend(case_input(g, case)[0])).numpy()
    assert tokens.shape == g[f"{case}_patch_tokens"].shape
    assert rel(tokens, g[f"{case}_patch_tokens"]) <= REL_TOL


def test_encoder_input_and_each_layer_output(pretrained, g):
    net = pretrained.network
    with torch.inference_mode():
        x = net.post_extract_proj(torch.from_numpy(g["single_patch_tokens"]))
        assert rel(x.numpy(), g["single_encoder_input"]) <= REL_TOL
        outputs = net.encoder.layer_outputs(torch.from_numpy(g["single_encoder_input"]))
    assert len(outputs) == len(g["single_layer_outputs"]) == 2
    for ours, golden in zip(outputs, g["single_layer_outputs"]):
        assert rel(ours.numpy(), golden) <= REL_TOL


@pytest.mark.parametrize("case", CASES)
def test_features(case, pretrained, g):
    wave, lengths = case_input(g, case)
    with torch.inference_mode():
        x, mask = pretrained.network.extract_features(pretrained.frontend(wave), lengths)
    assert x.shape == g[f"{case}_features"].shape
    assert rel(x.numpy(), g[f"{case}_features"]) <= REL_TOL
    ours = np.zeros(x.shape[:2], bool) if mask is None else mask.numpy()  # None: nothing padded
    np.testing.assert_array_equal(ours, golden_token_mask(g, case))


@pytest.mark.parametrize("case", CASES)
def test_finetuned_logits_and_probabilities_in_csv_order(case, finetuned, g):
    wave, lengths = case_input(g, case)
    with torch.inference_mode():
        logits = finetuned(wave, lengths).logits.numpy()
    csv_of_output = g["label_dict_csv_index"]
    assert logits.shape == (wave.shape[0], 527)
    assert np.abs(logits[:, csv_of_output] - g[f"{case}_ft_logits"]).max() <= LOGIT_TOL
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert np.abs(probs - g[f"{case}_ft_probs_csv_order"]).max() <= PROB_TOL
    assert np.abs(probs[:, csv_of_output] - g[f"{case}_ft_probs"]).max() <= PROB_TOL


def test_label_file_is_the_golden_csv(g):
    labels = load_labels()
    assert list(labels.mids) == list(g["audioset_csv_mid"])
    assert list(labels.names) == list(g["audioset_csv_display_name"])
    assert [labels.mids[i] for i in g["label_dict_csv_index"]] == list(g["label_dict_mid"])


@pytest.mark.parametrize("case", CASES)
def test_embedding_and_frames_pool_the_golden_features(case, pretrained, finetuned, g):
    """embedding = mean over unmasked tokens; frames = per time patch mean over its unmasked frequency tokens."""
    wave, lengths = case_input(g, case)
    with torch.inference_mode():
        out = pretrained(wave, lengths)
        ft = finetuned(wave, lengths)
    features, keep = g[f"{case}_features"], ~golden_token_mask(g, case)
    b, n, d = features.shape
    expected = (features * keep[..., None]).sum(1) / keep.sum(1, keepdims=True)
    assert out.embedding.shape == (b, d) and rel(out.embedding.numpy(), expected) <= REL_TOL
    per_patch, keep_patch = features.reshape(b, n // 8, 8, d), keep.reshape(b, n // 8, 8)
    count = keep_patch.sum(2)[..., None]
    frames = np.where(count > 0, (per_patch * keep_patch[..., None]).sum(2) / np.maximum(count, 1),
                      per_patch.mean(2))
    assert out.frames.shape == (b, n // 8, d) and rel(out.frames.numpy(), frames) <= REL_TOL
    assert ft.frames.shape == out.frames.shape and ft.embedding.shape == out.embedding.shape
    assert len(pretrained.frame_times(wave.shape[1])) == out.frames.shape[1]


@pytest.mark.parametrize("n_samples, n_frames", [(96000, 37), (160000, 62), (SHORT, 45), (2800, 1), (2799, 0)])
def test_frame_times(n_samples, n_frames, pretrained):
    times = pretrained.frame_times(n_samples)
    np.testing.assert_allclose(times, np.arange(n_frames) * 0.16)
    if n_frames:
        with torch.inference_mode():
            assert pretrained(torch.zeros(1, n_samples)).frames.shape[1] == n_frames


def test_relative_position_buckets_follow_t5_bidirectional_bucketing():
    b = relative_position_buckets(1000, 320, 800)
    assert b[0, 0] == 0 and b[1, 0] == 1 and b[0, 1] == 161  # left keys 0..159, right keys +160
    assert b[0, 79] == 160 + 79 and b[79, 0] == 79 and b[80, 0] == 80  # exact below 80
    assert b[999, 0] == 159 and b[0, 999] == 319  # log-spaced up to max_distance, then the last bucket
    assert b[400, 0] == 80 + int(math.log(400 / 80) / math.log(800 / 80) * 80)
    assert torch.equal(b[5:10, 5:10], b[:5, :5])  # depends on key - query only


def test_state_dict_round_trips_the_file_bit_for_bit(finetuned, checkpoints):
    """Legacy weight-norm g/v, the shared relative-position table and everything else load as stored."""
    stored = torch.load(checkpoints["finetuned"], map_location="cpu", weights_only=True)
    own = finetuned.network.state_dict()
    assert set(own) == set(stored["model"])
    for key, value in stored["model"].items():
        if not key.startswith("predictor."):
            assert torch.equal(own[key], value), key
    rows = [load_labels().mids.index(stored["label_dict"][i]) for i in range(527)]
    assert torch.equal(finetuned.network.predictor.weight[rows], stored["model"]["predictor.weight"])
    assert torch.equal(finetuned.network.predictor.bias[rows], stored["model"]["predictor.bias"])
    conv = finetuned.network.encoder.pos_conv[0]
    v, g = stored["model"]["encoder.pos_conv.0.weight_v"], stored["model"]["encoder.pos_conv.0.weight_g"]
    for k in (0, 63, 127):  # weight[:, :, k] = g[k] v[:, :, k] / ||v[:, :, k]||
        torch.testing.assert_close(conv.weight()[:, :, k], g[0, 0, k] * v[:, :, k] / v[:, :, k].norm())


@pytest.mark.parametrize("name, kind, has_scores", [
    ("beats_iter3", "finetuned", True), ("beats_iter3_as2m", "pretrained", False),
    ("beats_iter1", "pretrained", False)])
def test_any_registry_name_builds_from_the_checkpoint_cfg(name, kind, has_scores, checkpoints):
    model = create_model(name, weights=checkpoints[kind])
    with torch.inference_mode():
        out = model(torch.zeros(1, 16000))
    assert model.has_scores is has_scores and (out.logits is not None) is has_scores
    assert out.embedding.shape == (1, 128) and out.frames.shape == (1, 6, 128)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["model"].pop("encoder.layers.1.fc2.weight"), "missing keys: encoder.layers.1.fc2.weight"),
    (lambda c: c["model"].update({"extra.weight": torch.zeros(1)}), "unexpected keys: extra.weight"),
    (lambda c: c["cfg"].update(encoder_ffn_embed_dim=256), "shape mismatches"),
    (lambda c: c["cfg"].update(encoder_attention_heads=3), "not divisible by 3 heads"),
    (lambda c: c["cfg"].update(activation_fn="swish"), "activation_fn 'swish'"),
    (lambda c: c["cfg"].update(gru_rel_pos=False), "unexpected keys"),
    (lambda c: c["label_dict"].update({5: "/m/not_a_mid"}), "/m/not_a_mid"),
    (lambda c: c.pop("cfg"), "not a BEATs checkpoint"),
])
def test_checkpoint_that_does_not_fit_raises_weights_error(change, message, tmp_path, checkpoints):
    ckpt = torch.load(checkpoints["finetuned"], map_location="cpu", weights_only=True)
    change(ckpt)
    path = tmp_path / "bad_beats.pt"
    torch.save(ckpt, path)
    with pytest.raises(WeightsError) as err:
        create_model("beats_iter3_as2m", weights=path)
    assert str(path) in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("path", [MN04_WEIGHTS, pytest.param(MN10_RANDOM, marks=needs_shared)],
                         ids=lambda path: path.stem)
def test_checkpoint_of_another_family_raises_weights_error(path):
    with pytest.raises(WeightsError, match=str(path)) as err:
        create_model("beats_iter3", weights=path)
    assert "not a BEATs checkpoint" in str(err.value)


def _variant(tmp_path, **changes):
    """A checkpoint file with the fixture cfg changed, and random weights of that architecture."""
    cfg = {**SMALL_FINETUNED_CFG, "finetuned_model": False, **changes}
    torch.manual_seed(0)
    net = BEATs(BeatsConfig.from_cfg(cfg, "variant"))
    path = tmp_path / "variant.pt"
    torch.save({"cfg": cfg, "model": net.state_dict()}, path)
    return create_model("beats_iter3", weights=path), torch.load(path, weights_only=True)["model"]


@pytest.mark.parametrize("changes, present, absent", [
    ({}, ["encoder.layers.1.self_attn.grep_a", "encoder.layers.1.self_attn.relative_attention_bias.weight",
          "post_extract_proj.weight"], ["patch_embedding.bias", "predictor.weight"]),
    ({"gru_rel_pos": False}, [], ["encoder.layers.0.self_attn.grep_linear.weight"]),
    ({"relative_position_embedding": False}, [], ["encoder.layers.0.self_attn.relative_attention_bias.weight"]),
    ({"embed_dim": 128}, [], ["post_extract_proj.weight"]),
    ({"conv_bias": True}, ["patch_embedding.bias"], []),
    ({"encoder_layers": 3}, ["encoder.layers.2.fc1.weight"], []),
    ({"activation_fn": "glu"}, ["encoder.layers.0.fc1.linear.weight"], ["encoder.layers.0.fc1.weight"]),
    ({"conv_pos": 31, "conv_pos_groups": 8}, ["encoder.pos_conv.0.weight_v"], []),
    ({"input_patch_size": 8}, ["patch_embedding.weight"], []),
    ({"encoder_embed_dim": 96, "encoder_attention_heads": 3, "encoder_ffn_embed_dim": 200}, [], []),
    ({"layer_norm_first": True, "deep_norm": False}, [], []),
])
def test_architecture_is_read_from_cfg(changes, present, absent, tmp_path):
    model, state = _variant(tmp_path, **changes)
    cfg = model.network.config
    assert all(k in state for k in present) and not any(k in state for k in absent)
    assert state["patch_embedding.weight"].shape[-1] == cfg.input_patch_size
    assert state["encoder.pos_conv.0.weight_v"].shape == (
        cfg.encoder_embed_dim, cfg.encoder_embed_dim // cfg.conv_pos_groups, cfg.conv_pos)
    assert len(model.network.encoder.layers) == cfg.encoder_layers
    alpha = (2 * cfg.encoder_layers) ** 0.25 if cfg.deep_norm else 1.0
    assert all(layer.alpha == alpha for layer in model.network.encoder.layers)
    with torch.inference_mode():
        out = model(torch.randn(2, 32000) * 0.1, torch.tensor([32000, 20000]))
    n_frames = 1 + (32000 - 400) // 160
    patches = n_frames // cfg.input_patch_size
    assert out.embedding.shape == (2, cfg.encoder_embed_dim) and torch.isfinite(out.embedding).all()
    assert out.frames.shape == (2, patches, cfg.encoder_embed_dim) and torch.isfinite(out.frames).all()
    np.testing.assert_allclose(model.frame_times(32000), np.arange(patches) * cfg.input_patch_size * 0.01)


@pytest.mark.parametrize("layer_norm_first", [False, True])
def test_layer_norm_first_applies_the_encoder_layer_norm_at_the_end_only(layer_norm_first, tmp_path):
    model, _ = _variant(tmp_path, layer_norm_first=layer_norm_first, deep_norm=not layer_norm_first)
    norm = model.network.encoder.layer_norm
    with torch.no_grad():
        norm.weight.zero_()
        norm.bias.fill_(3.0)
        x, _ = model.network.extract_features(model.frontend(torch.randn(1, 16000) * 0.1))
    # pre-LN: the output is that LayerNorm's (constant 3); post-LN: it normalises the layers' input only
    assert torch.allclose(x, torch.full_like(x, 3.0)) is layer_norm_first


@pytest.mark.parametrize("changes", [
    {"activation_fn": "relu"}, {"activation_fn": "gelu_accurate"}, {"activation_fn": "tanh"},
    {"activation_fn": "linear"}, {"deep_norm": False}, {"max_distance": 200}, {"num_buckets": 64},
])
def test_forward_settings_change_the_output(changes, tmp_path):
    """Settings with the same keys and shapes as the fixture still change the computation."""
    model, _ = _variant(tmp_path)
    ckpt = torch.load(tmp_path / "variant.pt", weights_only=True)
    if "num_buckets" in changes:
        for k in [k for k in ckpt["model"] if k.endswith("relative_attention_bias.weight")]:
            ckpt["model"][k] = ckpt["model"][k][:changes["num_buckets"]].clone()
    ckpt["cfg"].update(changes)
    torch.save(ckpt, tmp_path / "changed.pt")
    changed = create_model("beats_iter3", weights=tmp_path / "changed.pt")
    wave = torch.randn(1, 96000) * 0.1  # 296 tokens: relative distances up to 295
    with torch.inference_mode():
        a, b = model(wave).embedding, changed(wave).embedding
    assert torch.isfinite(b).all() and not torch.allclose(a, b, atol=1e-5)


def test_wholly_padded_row_runs_unmasked(pretrained):
    wave = torch.randn(2, 32000) * 0.1
    with torch.inference_mode():
        out = pretrained(wave, torch.tensor([32000, 0]))
        alone = pretrained(wave[1:])
    assert torch.isfinite(out.embedding).all() and torch.isfinite(out.frames).all()
    torch.testing.assert_close(out.embedding[1:], alone.embedding, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, has_scores", [("beats_iter3", False), ("beats_iter3_as2m", True)])
def test_random_weights_build_the_released_architecture(name, has_scores):
    model = create_model(name, pretrained=False)
    net = model.network
    assert net.config == dataclasses.replace(RELEASED_ARCHITECTURE, finetuned_model=has_scores)
    assert net.encoder.layers[0].alpha == pytest.approx(24 ** 0.25)
    params = sum(p.numel() for p in model.parameters())
    assert 90.0e6 < params < 91.0e6  # ~90M, as released
    with torch.inference_mode():
        out = model(torch.randn(1, 16000) * 0.1)
    assert (out.logits is not None) is has_scores and model.has_scores is has_scores
    assert out.embedding.shape == (1, 768) and out.frames.shape == (1, 6, 768)
    assert out.logits is None or out.logits.shape == (1, 527)


def test_tagger_end_to_end(finetuned):
    wave = demo_wave(16000)[:96000]  # 6 s
    with pytest.warns(ShortWindowWarning):  # trained on 10 s
        tagger = Tagger(model=finetuned, window=3.0, hop=1.5, device="cpu", frames=True)
    results = list(tagger.tag_array(wave, 16000))
    assert [r.start_s for r in results] == [0.0, 1.5, 3.0]
    for r in results:
        assert r.scores.shape == (527,) and r.embedding.shape == (128,) and r.frames.shape == (18, 128)
        np.testing.assert_allclose(r.frame_times, r.start_s + np.arange(18) * 0.16)
    with torch.inference_mode():
        direct = finetuned(torch.from_numpy(wave[None, :48000]))
    np.testing.assert_allclose(results[0].scores, torch.sigmoid(direct.logits)[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(results[0].embedding, direct.embedding[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(results[0].frames, direct.frames[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("case, window", [("single", 6.0), ("batch", 10.0)])
def test_tagger_windows_equal_to_golden_cases(case, window, finetuned, g):
    """A 6 s window of the 6 s clip, and the 7.3 s clip in a 10 s window (zero-padded and masked)."""
    wave = g["single_wav"][0] if case == "single" else g["batch_wav"][1, :SHORT]
    results = list(Tagger(model=finetuned, window=window, hop=window / 2, device="cpu").tag_array(wave, 16000))
    assert len(results) == 1
    golden = g[f"{case}_ft_probs_csv_order"][-1]
    assert np.abs(results[0].scores - golden).max() <= PROB_TOL


def test_cli_tag_npz(tmp_path, g):
    """`streamtag tag x.wav --model beats_iter3_as2m --weights ... --window 10 --hop 5 --format npz -o x.npz`."""
    wav = tmp_path / "speech_then_whale.wav"  # 10 s speech, then the 7.3 s whale clip
    sf.write(wav, np.concatenate([g["batch_wav_int16"][0], g["batch_wav_int16"][1, :SHORT]]), 16000,
             subtype="PCM_16")
    out = tmp_path / "x.npz"
    res = CliRunner().invoke(main, ["tag", str(wav), "--model", "beats_iter3_as2m", "--weights", str(FINETUNED),
                                    "--window", "10", "--hop", "5", "--format", "npz", "-o", str(out),
                                    "--frames", "--quiet"])
    assert res.exit_code == 0, res.output
    with np.load(out) as z:
        np.testing.assert_allclose(z["start_s"], [0.0, 5.0, 10.0])
        np.testing.assert_allclose(z["end_s"], [10.0, 15.0, 20.0])
        assert z["scores"].shape == (3, 527) and z["embeddings"].shape == (3, 128)
        assert list(z["mids"]) == list(g["audioset_csv_mid"])
        assert list(z["labels"]) == list(g["audioset_csv_display_name"])
        assert z["frame_embeddings"].shape == (3, 62, 128)
        np.testing.assert_allclose(z["frame_times"], z["start_s"][:, None] + np.arange(62) * 0.16)
        # window 0 is the speech item, window 2 the whale clip padded to 10 s: the golden batch rows
        assert np.abs(z["scores"][[0, 2]] - g["batch_ft_probs_csv_order"]).max() <= PROB_TOL


@pytest.mark.device
@pytest.mark.parametrize("case", CASES)
def test_cuda_matches_golden(case, g):
    model = create_model("beats_iter3_as2m", weights=FINETUNED).to("cuda")
    wave, lengths = case_input(g, case)
    with torch.inference_mode():
        logits = model(wave.cuda(), None if lengths is None else lengths.cuda()).logits.cpu().numpy()
    assert np.abs(logits[:, g["label_dict_csv_index"]] - g[f"{case}_ft_logits"]).max() <= LOGIT_TOL
