"""Golden parity with the official SSAST code (../shared/fixtures/ssast), loading the fixture files as they are."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from streamtag import Tagger, create_model
from streamtag.errors import WeightsError
from streamtag.models.ssast import SSAST as SSASTNetwork, SSASTConfig
from tests.helpers import EFFAT, MN04_WEIGHTS, SHARED, demo_wave, fixture_files, load_npz, needs_shared, require_shared

SSAST = SHARED / "fixtures" / "ssast"
FILES = {"patch": SSAST / "ssast_tiny_patch_depth2_random.pth",
         "frame": SSAST / "ssast_tiny_frame_depth2_random.pth",
         "finetuned": SSAST / "ssast_tiny_patch_depth2_finetuned527_random.pth"}
NAMES = {"patch": "ssast_tiny_patch_400", "frame": "ssast_tiny_frame_400", "finetuned": "ssast_tiny_patch_400"}
CASES = ["clip6s_t1024", "clip6s_t400", "clip11s_t1024"]
FINETUNED_CASES = ["clip6s_t1024", "clip11s_t1024"]
# The fixtures' reduced architecture (SSAST-Tiny width 48, depth 2), for the files synthesized without ../shared:
# token grid of the stored pos_embed per file (self-supervised: the 128 x 1024 pretraining input cut into patches)
TINY_DIM, TINY_DEPTH, TINY_HEADS, TINY_MLP = 48, 2, 3, 192
SYNTH = {"patch": dict(patch_shape=(16, 16), strides=(10, 10), pos_grid=(8, 64)),
         "frame": dict(patch_shape=(128, 2), strides=(128, 1), pos_grid=(1, 512)),
         "finetuned": dict(patch_shape=(16, 16), strides=(10, 10), pos_grid=(12, 101), input_tdim=1024,
                           num_classes=527)}
PRETEXT_CLASSES = 256  # cpredlayer / gpredlayer outputs of the pretraining stage
FBANK_MAX, FBANK_MEAN, POS_TOL, REL_TOL, LOGIT_TOL, PROB_TOL = 1e-3, 1e-5, 1e-5, 1e-3, 1e-3, 1e-4


def ssast_golden(case: str) -> dict:
    require_shared()
    return load_npz(SSAST / f"ssast_golden_{case}.npz")


def rel_max(ours: np.ndarray, ref: np.ndarray) -> float:
    """max|ours - ref| / max|ref| (the README's token and pooled-vector criterion)."""
    assert ours.shape == ref.shape
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def synthesize_checkpoint(kind: str, path):
    """A random-weight SSAST state of the fixtures' architecture in the released layout: the DataParallel
    `module.` state with timm's ImageNet heads, plus the pretext-task parts (self-supervised) or mlp_head."""
    torch.manual_seed({"patch": 0, "frame": 1, "finetuned": 2}[kind])
    cfg = SSASTConfig(dim=TINY_DIM, depth=TINY_DEPTH, heads=TINY_HEADS, mlp_hidden=TINY_MLP, **SYNTH[kind])
    net = SSASTNetwork(cfg)
    for p in (net.v.cls_token, net.v.dist_token, net.v.pos_embed):
        torch.nn.init.trunc_normal_(p, std=0.02)
    d = TINY_DIM
    state = {}
    if kind != "finetuned":
        state.update({"p_input_fdim": torch.tensor(128), "p_input_tdim": torch.tensor(1024),
                      "mask_embed": torch.randn(1, 1, d) * 0.02})
    own = net.state_dict()
    state.update({k: v for k, v in own.items() if k.startswith("v.")})
    for head in ("head", "head_dist"):
        state.update({f"v.{head}.weight": torch.randn(1000, d) * 0.02, f"v.{head}.bias": torch.zeros(1000)})
    if kind == "finetuned":
        state.update({k: v for k, v in own.items() if k.startswith("mlp_head.")})
    else:
        for layer in ("cpredlayer", "gpredlayer"):
            state.update({f"{layer}.0.weight": torch.randn(d, d) * 0.02, f"{layer}.0.bias": torch.zeros(d),
                          f"{layer}.2.weight": torch.randn(PRETEXT_CLASSES, d) * 0.02,
                          f"{layer}.2.bias": torch.zeros(PRETEXT_CLASSES)})
    torch.save({"module." + k: v for k, v in state.items()}, path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return fixture_files(FILES, synthesize_checkpoint, tmp_path_factory.mktemp("ssast_checkpoints"))


@pytest.fixture(scope="module")
def models(checkpoints):
    return {k: create_model(NAMES[k], weights=path) for k, path in checkpoints.items()}


@needs_shared
@pytest.mark.parametrize("kind", list(FILES))
def test_synthesized_checkpoint_has_the_fixture_layout(kind, tmp_path):
    """The checkpoints used without ../shared stay faithful to the fixture files (keys, shapes, dtypes, scalars)."""
    def layout(state):
        return {k: (tuple(v.shape), v.dtype, v.item() if v.dim() == 0 else None) for k, v in state.items()}
    ours = torch.load(synthesize_checkpoint(kind, tmp_path / "synth.pth"), weights_only=True)
    assert layout(ours) == layout(torch.load(FILES[kind], map_location="cpu", weights_only=True))


def run(model, x: torch.Tensor, pooling: str = "avgtok"):
    """Network outputs and normed tokens for features x, with the given pooling."""
    net = model.network
    saved, net.pooling = net.pooling, pooling
    try:
        with torch.inference_mode():
            logits, pooled, frames = net(x)
            tokens, grid = net.v(net.fit_length(x))
    finally:
        net.pooling = saved
    return logits, pooled, frames, tokens, grid


@pytest.mark.parametrize("case", CASES)
def test_front_end_matches_golden_fbank(case, models):
    g = ssast_golden(case)
    model, target = models["patch"], int(g["target_length"])
    with torch.inference_mode():
        features = model.frontend(torch.from_numpy(g["wav"])[None])[0].numpy()
    assert features.shape == (int(g["n_frames_before_pad_or_cut"]), 128)
    kept = min(target, len(features))
    delta = np.abs(features[:kept] - g["fbank"][:kept])
    assert delta.max() <= FBANK_MAX and delta.mean() <= FBANK_MEAN
    np.testing.assert_allclose(g["fbank"][kept:], model.network.pad_value, atol=1e-7)  # padded rows


@pytest.mark.parametrize("case", FINETUNED_CASES)
def test_finetuned_network_pads_or_cuts_to_its_input_length(case, models):
    g = ssast_golden(case)
    model = models["finetuned"]
    with torch.inference_mode():
        fitted = model.network.fit_length(model.frontend(torch.from_numpy(g["wav"])[None]))[0].numpy()
    assert fitted.shape[0] == model.network.cfg.input_tdim
    delta = np.abs(fitted - g["fbank"][:len(fitted)])  # frames past input_tdim are never read by the conv
    assert delta.max() <= FBANK_MAX and delta.mean() <= FBANK_MEAN


@pytest.mark.parametrize("kind", ["patch", "frame"])
@pytest.mark.parametrize("case", CASES)
def test_metadata_and_adapted_pos_embed(kind, case, models):
    g = ssast_golden(case)
    net, target = models[kind].network, int(g["target_length"])
    cfg = net.cfg
    f_dim, t_dim = (int(v) for v in g[f"{kind}_fdim_tdim"])
    assert (*cfg.patch_shape, *cfg.strides) == tuple(g[f"{kind}_fshape_tshape_fstride_tstride"])
    assert cfg.pos_grid == tuple(g[f"{kind}_pretrain_fdim_tdim"])
    with torch.inference_mode():
        _, (got_f, got_t) = net.v(torch.from_numpy(g["fbank"])[None])
        pos = net.v.positions(f_dim, t_dim).numpy()
    assert (got_f, got_t) == (f_dim, t_dim)
    with np.load(SSAST / "ssast_pos_embed_adapted.npz") as z:
        ref = z[f"{kind}_t{target}"]
    assert pos.shape == ref.shape
    assert np.abs(pos - ref).max() <= POS_TOL


@pytest.mark.parametrize("kind", ["patch", "frame"])
@pytest.mark.parametrize("case", CASES)
def test_pretrained_tokens_pooled_and_frames(kind, case, models):
    g = ssast_golden(case)
    x = torch.from_numpy(g["fbank"])[None]
    model = models[kind]
    logits, avgtok, frames, tokens, (f_dim, t_dim) = run(model, x, "avgtok")
    assert logits is None and not model.has_scores
    assert rel_max(tokens.numpy(), g[f"{kind}_tokens"]) <= REL_TOL
    assert rel_max(avgtok.numpy(), g[f"{kind}_pooled_avgtok"]) <= REL_TOL
    _, cls, _, _, _ = run(model, x, "cls")
    assert rel_max(cls.numpy(), g[f"{kind}_pooled_cls"]) <= REL_TOL
    # frames: the token grid's time columns, averaged over its frequency rows
    grid = g[f"{kind}_tokens"][:, 2:].reshape(1, f_dim, t_dim, -1).mean(axis=1)
    assert frames.shape == grid.shape
    assert rel_max(frames.numpy(), grid) <= REL_TOL
    times = model.frame_times(160 * (x.shape[1] - 1) + 400)
    assert len(times) == frames.shape[1]
    np.testing.assert_allclose(np.diff(times), model.network.cfg.strides[1] * 0.01)


@pytest.mark.parametrize("case", FINETUNED_CASES)
def test_finetuned_logits_from_the_waveform(case, models):
    g = ssast_golden(case)
    model = models["finetuned"]
    with torch.inference_mode():
        logits, pooled, frames = model(torch.from_numpy(g["wav"])[None])
    assert logits.shape == (1, 527) and model.has_scores
    assert np.abs(logits.numpy() - g["finetuned_logits_avgtok"]).max() <= LOGIT_TOL
    assert np.abs(torch.sigmoid(logits).numpy() - g["finetuned_probs_avgtok"]).max() <= PROB_TOL
    assert rel_max(pooled.numpy(), g["finetuned_pooled_avgtok"]) <= REL_TOL
    # only columns inside the real audio: 598 frames -> 59 columns; 1098 (cut to 1024) -> all 101
    assert frames.shape[1] == len(model.frame_times(len(g["wav"]))) == {"clip6s_t1024": 59, "clip11s_t1024": 101}[case]


@pytest.mark.parametrize("case", FINETUNED_CASES)
def test_finetuned_tokens_and_cls_head(case, models):
    g = ssast_golden(case)
    x = torch.from_numpy(g["fbank"])[None]
    logits, pooled, frames, tokens, _ = run(models["finetuned"], x, "avgtok")
    assert rel_max(tokens.numpy(), g["finetuned_tokens"]) <= REL_TOL
    assert np.abs(logits.numpy() - g["finetuned_logits_avgtok"]).max() <= LOGIT_TOL
    assert rel_max(pooled.numpy(), g["finetuned_pooled_avgtok"]) <= REL_TOL
    assert frames.shape == (1, 101, 48)
    logits, pooled, _, _, _ = run(models["finetuned"], x, "cls")
    assert np.abs(logits.numpy() - g["finetuned_logits_cls"]).max() <= LOGIT_TOL
    assert rel_max(pooled.numpy(), g["finetuned_pooled_cls"]) <= REL_TOL


def test_checkpoint_layout_is_read_from_the_file(models):
    cfgs = {k: m.network.cfg for k, m in models.items()}
    assert [(c.dim, c.depth, c.heads, c.mlp_hidden, c.cls_tokens) for c in cfgs.values()] == [(48, 2, 3, 192, 2)] * 3
    assert cfgs["patch"].input_tdim is None and cfgs["frame"].input_tdim is None
    assert (cfgs["finetuned"].pos_grid, cfgs["finetuned"].num_classes) == ((12, 101), 527)
    assert sum(p.numel() for p in models["finetuned"].network.parameters()) == 251_263 - 2 * 1000 * 49


def test_state_without_dataparallel_prefix_loads(tmp_path, models, checkpoints):
    state = torch.load(checkpoints["patch"], weights_only=True)
    path = tmp_path / "plain.pth"
    torch.save({k.removeprefix("module."): v for k, v in state.items()}, path)
    plain = create_model("ssast_tiny_patch_400", weights=path)
    x = torch.randn(1, 400, 128, generator=torch.Generator().manual_seed(0))  # a 4 s fbank
    with torch.inference_mode():
        torch.testing.assert_close(plain.network(x)[1], models["patch"].network(x)[1], rtol=0, atol=0)


def _saved(tmp_path, state: dict) -> str:
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    return str(path)


@pytest.mark.parametrize("problem", ["other_family", pytest.param("other_family_mn10", marks=needs_shared),
                                     "missing_block_key", "frame_file_as_patch", "wrong_size",
                                     "no_pretrain_scalars", "non_audioset_head"])
def test_unfit_checkpoints_raise_weights_error_naming_the_file(problem, tmp_path, checkpoints):
    name, path = "ssast_tiny_patch_400", None
    patch = torch.load(checkpoints["patch"], weights_only=True)
    if problem == "other_family":
        path = str(MN04_WEIGHTS)
    elif problem == "other_family_mn10":
        path = str(EFFAT / "mn10_as_random.pt")
    elif problem == "missing_block_key":
        path = _saved(tmp_path, {k: v for k, v in patch.items() if k != "module.v.blocks.1.attn.proj.weight"})
    elif problem == "frame_file_as_patch":
        path = str(checkpoints["frame"])
    elif problem == "wrong_size":
        tiny = create_model("ssast_tiny_patch_400", pretrained=False).network.state_dict()  # 192 wide
        tiny.update({"p_input_fdim": torch.tensor(128), "p_input_tdim": torch.tensor(1024)})
        name, path = "ssast_base_patch_400", _saved(tmp_path, tiny)
    elif problem == "no_pretrain_scalars":
        path = _saved(tmp_path, {k: v for k, v in patch.items() if "p_input" not in k})
    elif problem == "non_audioset_head":
        tuned = torch.load(checkpoints["finetuned"], weights_only=True)
        tuned["module.mlp_head.1.weight"] = tuned["module.mlp_head.1.weight"][:50]
        tuned["module.mlp_head.1.bias"] = tuned["module.mlp_head.1.bias"][:50]
        path = _saved(tmp_path, tuned)
    with pytest.raises(WeightsError, match=str(path).replace("\\", "\\\\")) as err:
        create_model(name, weights=path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name, dim, frames_per_s", [("ssast_tiny_patch_400", 192, 10),
                                                     ("ssast_tiny_frame_400", 192, 100)])
def test_random_weights_build_the_released_architecture(name, dim, frames_per_s):
    model = create_model(name, pretrained=False)
    cfg = model.network.cfg
    assert (cfg.dim, cfg.depth, cfg.heads, cfg.mlp_hidden, cfg.cls_tokens) == (dim, 12, 3, 4 * dim, 2)
    assert cfg.pos_grid == {"patch": (8, 64), "frame": (1, 512)}[model.spec.config.patch]
    with torch.inference_mode():
        logits, emb, frames = model(torch.randn(2, 16000))
    assert logits is None and emb.shape == (2, dim) and model.spec.embedding_dim == dim
    assert frames.shape[1] == len(model.frame_times(16000)) and frames.shape[1] in (9, 97)
    assert abs(1 / np.diff(model.frame_times(16000)).mean() - frames_per_s) < 1e-9


@pytest.mark.parametrize("name, dim, heads", [("ssast_small_patch_400", 384, 6), ("ssast_base_patch_400", 768, 12),
                                              ("ssast_base_frame_250", 768, 12)])
def test_random_weights_larger_releases(name, dim, heads):
    """Small and Base build and run on a 1 s input (about 2 s each on CPU)."""
    model = create_model(name, pretrained=False)
    assert (model.network.cfg.dim, model.network.cfg.heads) == (dim, heads)
    with torch.inference_mode():
        _, emb, frames = model(torch.randn(1, 16000))
    assert emb.shape == (1, dim) and frames.shape[1] == len(model.frame_times(16000))


def test_minimum_window_gives_one_frame():
    for name in ("ssast_tiny_patch_400", "ssast_tiny_frame_400"):
        model = create_model(name, pretrained=False)
        n = model.spec.min_samples
        with torch.inference_mode():
            _, _, frames = model(torch.randn(1, n))
        assert frames.shape[1] == len(model.frame_times(n)) == 1


@pytest.mark.parametrize("kind", ["frame", "finetuned"])
def test_tagger_end_to_end(kind, models):
    model = models[kind]
    wave = demo_wave(16000)[:8 * 16000]
    window, hop = 5.0, 1.5
    tagger = Tagger(model=model, window=window, hop=hop, device="cpu", frames=True)
    results = list(tagger.tag_array(wave, 16000))
    assert len(results) >= 3
    offsets = model.frame_times(int(window * 16000))
    for r in results:
        assert (r.scores is None) == (kind != "finetuned")
        if r.scores is not None:
            assert r.scores.shape == (527,)
        assert r.embedding.shape == (48,)
        assert r.frames.shape == (len(offsets), 48)
        np.testing.assert_allclose(r.frame_times, r.start_s + offsets, atol=1e-9)
    assert results[1].start_s == pytest.approx(hop)
    with torch.inference_mode():
        logits, emb, frames = model(torch.from_numpy(wave[:int(window * 16000)])[None])
    np.testing.assert_allclose(results[0].embedding, emb[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(results[0].frames, frames[0].numpy(), atol=1e-5)
    if logits is not None:
        np.testing.assert_allclose(results[0].scores, torch.sigmoid(logits)[0].numpy(), atol=1e-6)
