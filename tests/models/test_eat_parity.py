"""Golden parity with the official EAT + fairseq code (../shared/fixtures/eat), checkpoints loaded as they are."""

import numpy as np
import pytest
import torch

from streamtag import Tagger
from streamtag.errors import ConfigError, WeightsError
from streamtag.models import create_model, get_spec
from streamtag.models.eat import (SCRIPT_TARGET_LENGTH, EATEncoderConfig, EATNetwork, EATRelease,
                                  sincos_positions)
from streamtag.models.labels import load_labels
from tests.helpers import MN04_WEIGHTS, SHARED, demo_wave, fixture_files, load_npz, needs_shared, require_shared

EAT = SHARED / "fixtures" / "eat"
PRETRAINED = EAT / "eat_pretrained_depth2_random.pt"
FINETUNED = EAT / "eat_finetuned_depth2_random.pt"
FILES = {"pretrained": PRETRAINED, "finetuned": FINETUNED}
# The fixtures' reduced architecture (depth 2, width 128, a 1024-row position table), for the files synthesized
# without ../shared: the `cfg.model` entries the official `data2vec_multi` config has and the loader reads
SMALL_MODEL_CFG = {
    "_name": "data2vec_multi", "depth": 2, "num_heads": 4, "norm_eps": 1e-06, "embed_dim": 128, "mlp_ratio": 4.0,
    "layer_norm_first": False,
    "modalities": {"image": {"type": "IMAGE", "prenet_depth": 0, "num_extra_tokens": 1, "use_alibi_encoder": False,
                             "in_chans": 1, "patch_size": 16}},
}
POSITION_ROWS = 1024
DECODER_SHAPES = {  # the student's CNN decoder (pre-training only)
    "blocks.0.0.weight": (128, 8, 3, 3), "blocks.0.0.bias": (128,), "blocks.1.0.weight": (128, 8, 3, 3),
    "blocks.1.0.bias": (128,), "proj.weight": (128, 128), "proj.bias": (128,)}
FBANK_TOL, INPUT_TOL, REL_TOL, PROB_TOL = 1e-3, 1e-4, 1e-3, 1e-4  # the fixture README's tolerances
CASES = [("6s_T1024", "clip6", 1024), ("10s_T1024", "clip10", 1024),
         ("6s_T608", "clip6", 608), ("10s_T512", "clip10", 512)]
STEP_S = 0.16  # 16 fbank frames of 10 ms per time patch


def l2_rel(a: np.ndarray, ref: np.ndarray) -> float:
    """‖a − ref‖₂ / ‖ref‖₂ over the whole array (the fixture README's relative error)."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - ref) / np.linalg.norm(ref.astype(np.float64)))


def step_means(tokens: np.ndarray, freq: int = 8) -> np.ndarray:
    """Golden token features [P, D] -> our frames [P/8, D]: the mean of each 160 ms step's 8 frequency tokens."""
    return tokens.reshape(len(tokens) // freq, freq, -1).mean(axis=1)


@pytest.fixture(scope="module")
def g():
    require_shared()
    return load_npz(EAT / "goldens_eat_depth2.npz")


def _random_encoder(seed: int, classes: int = 0) -> dict:
    torch.manual_seed(seed)
    m = SMALL_MODEL_CFG
    cfg = EATEncoderConfig(embed_dim=m["embed_dim"], depth=m["depth"], num_heads=m["num_heads"], mlp_ratio=m["mlp_ratio"],
                        norm_eps=m["norm_eps"], position_rows=POSITION_ROWS)
    return EATNetwork(cfg, classes).state_dict()


def synthesize_checkpoint(kind: str, path):
    """A random-weight fairseq EAT file of the fixtures' architecture in the released layout: pre-trained
    `data2vec_multi` (student keys, its CNN decoder and the `_ema` teacher) or fine-tuned
    `mae_image_classification` (`model.` encoder, fc_norm, head; task_state labels 'mid\\n' -> 'row')."""
    fairseq = {"args": None, "criterion": None, "extra_state": {}, "task_state": {},
               "optimizer_history": [{"criterion_name": "ModelCriterion", "num_updates": 0}]}
    encoder = {k.removeprefix("model."): v for k, v in _random_encoder(0).items()}
    if kind == "pretrained":
        teacher = {k.removeprefix("model."): v for k, v in _random_encoder(1).items()}
        decoder = {"modality_encoders.IMAGE.decoder." + k: torch.randn(shape) * 0.02
                   for k, shape in DECODER_SHAPES.items()}
        checkpoint = {**fairseq, "cfg": {"_name": None, "model": SMALL_MODEL_CFG},
                      "model": {**encoder, **decoder, "_ema": teacher}}
    else:
        mids = load_labels().mids
        checkpoint = {**fairseq, "cfg": {"_name": None, "model": {
            "_name": "mae_image_classification", "prediction_mode": "CLS_TOKEN", "use_fc_norm": True,
            "pretrained_model_args": {"_name": None, "model": SMALL_MODEL_CFG}}},
            "model": _random_encoder(2, classes=len(mids)),
            "task_state": {"labels": {mid + "\n": str(i) for i, mid in enumerate(mids)}}}
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return fixture_files(FILES, synthesize_checkpoint, tmp_path_factory.mktemp("eat_checkpoints"))


@pytest.fixture(scope="module")
def pretrained(checkpoints):
    return create_model("eat_base_epoch30", weights=checkpoints["pretrained"])


@pytest.fixture(scope="module")
def finetuned(checkpoints):
    return create_model("eat_base_epoch30_as2m", weights=checkpoints["finetuned"])


def _tensors(state: dict) -> dict:
    return {k: _tensors(v) if isinstance(v, dict) else (tuple(v.shape), v.dtype) for k, v in state.items()}


def _sub(full, part):
    """`part` with the values of `full` at its keys (nested dicts): what `full` has of `part`'s entries."""
    return {k: _sub(full.get(k), v) if isinstance(v, dict) and isinstance(full.get(k), dict) else full.get(k)
            for k, v in part.items()} if isinstance(full, dict) else full


@needs_shared
@pytest.mark.parametrize("kind", list(FILES))
def test_synthesized_checkpoint_has_the_fixture_layout(kind, tmp_path):
    """The checkpoints used without ../shared stay faithful to the fixture files (entries, read cfg, tensors)."""
    ours = torch.load(synthesize_checkpoint(kind, tmp_path / "synth.pt"), weights_only=True)
    theirs = torch.load(FILES[kind], map_location="cpu", weights_only=True)
    assert sorted(ours) == sorted(theirs)
    assert _sub(theirs["cfg"], ours["cfg"]) == ours["cfg"]  # every cfg entry written is the fixture's
    assert _tensors(ours["model"]) == _tensors(theirs["model"])
    assert ours["task_state"] == theirs["task_state"]


def run(model, features: np.ndarray):
    """(logits, embedding, frames, all tokens) of the network on a golden model input [1, 1, T, 128]."""
    x = torch.from_numpy(features)
    with torch.inference_mode():
        logits, emb, frames = model.network(x)
        tokens = model.network.tokens(x)
    return (None if logits is None else logits.numpy()), emb[0].numpy(), frames[0].numpy(), tokens[0].numpy()


# -- front-end -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("clip", ["clip6", "clip10"])
def test_raw_fbank(clip, g, pretrained):
    with torch.inference_mode():
        fbank = pretrained.frontend.fbank(torch.from_numpy(g[f"{clip}_wav"])[None])[0].numpy()
    assert fbank.shape == g[f"{clip}_fbank_raw"].shape
    assert np.abs(fbank - g[f"{clip}_fbank_raw"]).max() <= FBANK_TOL


@pytest.mark.parametrize("case, clip, target", CASES)
def test_model_input_pad_cut_and_normalise(case, clip, target, g):
    frontend = EATRelease(768, target_length=target).frontend()
    with torch.inference_mode():
        x = frontend(torch.from_numpy(g[f"{clip}_wav"])[None]).numpy()
    assert x.shape == (1, target, 128)
    assert np.abs(x[0] - g[f"{case}_input"][0, 0]).max() <= INPUT_TOL


def test_default_front_end_rounds_frames_up_to_16(g, pretrained):
    """target_length=None: 598 fbank frames of the 6 s clip -> T=608, the golden 6s_T608 input."""
    assert pretrained.frontend.target_length is None and pretrained.frontend.frames_multiple == 16
    with torch.inference_mode():
        x = pretrained.frontend(torch.from_numpy(g["clip6_wav"])[None]).numpy()
        assert pretrained.frontend(torch.zeros(1, 160000)).shape == (1, 1008, 128)  # 998 frames -> 1008
    assert np.abs(x[0] - g["6s_T608_input"][0, 0]).max() <= INPUT_TOL


def test_script_front_end_option_is_1024_frames():
    frontend = EATRelease(768, target_length=SCRIPT_TARGET_LENGTH).frontend()
    with torch.inference_mode():
        assert frontend(torch.zeros(2, 48000)).shape == (2, 1024, 128)
    with pytest.raises(ConfigError, match="multiple of 16"):
        EATRelease(768, target_length=1000).frontend()


# -- encoder features and classifier ---------------------------------------------------------------------
@pytest.mark.parametrize("case, clip, target", CASES)
def test_pretrained_features(case, clip, target, g, pretrained):
    logits, emb, frames, tokens = run(pretrained, g[f"{case}_input"])
    assert logits is None  # self-supervised release: no head
    assert tokens.shape == (1 + target // 2, 128)
    assert l2_rel(tokens[1:], g[f"{case}_pt_frame"]) <= REL_TOL
    assert l2_rel(tokens[0], g[f"{case}_pt_utt"]) <= REL_TOL
    assert l2_rel(emb, g[f"{case}_pt_utt"]) <= REL_TOL
    assert frames.shape == (target // 16, 128)
    assert l2_rel(frames, step_means(g[f"{case}_pt_frame"])) <= REL_TOL


@pytest.mark.parametrize("case, clip, target", CASES)
def test_finetuned_classifier(case, clip, target, g, finetuned):
    logits, emb, _, tokens = run(finetuned, g[f"{case}_input"])
    assert logits.shape == (1, 527)
    assert l2_rel(logits, g[f"{case}_ft_logits"]) <= REL_TOL
    assert np.abs(1 / (1 + np.exp(-logits)) - g[f"{case}_ft_probs"]).max() <= PROB_TOL
    assert l2_rel(emb, g[f"{case}_ft_utt"]) <= REL_TOL
    assert l2_rel(tokens[0], g[f"{case}_ft_utt"]) <= REL_TOL


def test_finetuned_frame_features(g, finetuned):
    _, _, frames, tokens = run(finetuned, g["10s_T1024_input"])
    assert l2_rel(tokens[1:], g["10s_T1024_ft_frame"]) <= REL_TOL
    assert l2_rel(frames, step_means(g["10s_T1024_ft_frame"])) <= REL_TOL


@pytest.mark.parametrize("weights, utt, logits", [(PRETRAINED, "pt_utt", None), (FINETUNED, "ft_utt", "ft_logits")])
def test_waveform_to_outputs_through_create_model(weights, utt, logits, g):
    """model(wave) on the 6 s clip: the default front-end gives T=608, so the 6s_T608 goldens apply."""
    model = create_model("eat_base_epoch10", weights=weights)  # any EAT name loads either kind of file
    with torch.inference_mode():
        out = model(torch.from_numpy(g["clip6_wav"])[None])
    assert l2_rel(out.embedding[0].numpy(), g[f"6s_T608_{utt}"]) <= REL_TOL
    assert out.frames.shape == (1, 38, 128)
    if logits is None:
        assert out.logits is None
    else:
        assert l2_rel(out.logits.numpy(), g[f"6s_T608_{logits}"]) <= REL_TOL


def test_positions_table_is_the_fixed_sincos_table(checkpoints):
    table = torch.load(checkpoints["pretrained"], map_location="cpu", weights_only=True)["model"][
        "modality_encoders.IMAGE.fixed_positional_encoder.positions"]
    assert (sincos_positions(128, table.shape[1]) - table).abs().max() <= 1e-5


# -- the loader's choices --------------------------------------------------------------------------------
def test_student_is_used_not_the_ema_teacher(g, tmp_path, pretrained):
    """A loader reading `_ema` instead of the student's top-level keys misses the goldens by far."""
    ckpt = torch.load(PRETRAINED, map_location="cpu", weights_only=True)
    ema = ckpt["model"]["_ema"]
    ckpt["model"] = {**{k: v for k, v in ckpt["model"].items() if k not in ema}, **ema, "_ema": ema}
    path = tmp_path / "teacher_as_student.pt"
    torch.save(ckpt, path)
    teacher = create_model("eat_base_epoch30", weights=path)
    _, emb, _, tokens = run(teacher, g["10s_T1024_input"])
    assert l2_rel(tokens[1:], g["10s_T1024_pt_frame"]) > 0.1
    assert l2_rel(emb, g["10s_T1024_pt_utt"]) > 0.1
    _, emb, _, _ = run(pretrained, g["10s_T1024_input"])
    assert l2_rel(emb, g["10s_T1024_pt_utt"]) <= REL_TOL


def test_head_rows_follow_task_state_labels(g, tmp_path, finetuned):
    """A checkpoint whose class order differs from the CSV is permuted back into CSV order at load time."""
    ckpt = torch.load(FINETUNED, map_location="cpu", weights_only=True)
    mids = list(ckpt["task_state"]["labels"])
    order = np.random.default_rng(0).permutation(len(mids))  # new head row r holds old class order[r]
    ckpt["task_state"]["labels"] = {mids[old]: str(row) for row, old in enumerate(order)}
    ckpt["model"]["head.weight"] = ckpt["model"]["head.weight"][order]
    ckpt["model"]["head.bias"] = ckpt["model"]["head.bias"][order]
    path = tmp_path / "shuffled_head.pt"
    torch.save(ckpt, path)
    shuffled = create_model("eat_base_epoch30_as2m", weights=path)
    logits, _, _, _ = run(shuffled, g["6s_T608_input"])
    assert l2_rel(logits, g["6s_T608_ft_logits"]) <= REL_TOL


@pytest.mark.parametrize("breakage, message", [
    ("no_task_state", "task_state"),
    ("missing_block", "missing keys"),
    ("flat_state_dict", "not an EAT fairseq checkpoint"),
    ("other_model", "_name"),
])
def test_broken_eat_checkpoints_raise(breakage, message, tmp_path, checkpoints):
    ckpt = torch.load(checkpoints["finetuned"], map_location="cpu", weights_only=True)
    if breakage == "no_task_state":
        ckpt["task_state"] = {}
    elif breakage == "missing_block":
        ckpt["model"] = {k: v for k, v in ckpt["model"].items() if not k.startswith("model.blocks.1.mlp")}
    elif breakage == "flat_state_dict":
        ckpt = ckpt["model"]
    else:
        ckpt["cfg"]["model"]["_name"] = "wav2vec2"
    path = tmp_path / f"{breakage}.pt"
    torch.save(ckpt, path)
    with pytest.raises(WeightsError, match=message) as err:
        create_model("eat_base_epoch30_as2m", weights=path)
    assert str(path) in str(err.value)


def test_other_family_checkpoint_raises_naming_the_file():
    with pytest.raises(WeightsError) as err:
        create_model("eat_base_epoch30", weights=MN04_WEIGHTS)
    assert str(MN04_WEIGHTS) in str(err.value)


def test_window_longer_than_the_positions_table_raises(pretrained):
    with torch.inference_mode(), pytest.raises(ConfigError, match="position table"):
        pretrained(torch.zeros(1, 16000 * 21))  # 2098 frames -> T=2112 > 1024 rows / 8 * 16 = 2048


# -- geometry and random-weight builds -------------------------------------------------------------------
@pytest.fixture(scope="module")
def pretrained_script_length(checkpoints):
    """The pre-trained fixture built with `target_length=1024`: every window padded/cut like the scripts."""
    spec = get_spec("eat_base_epoch30").with_config(target_length=SCRIPT_TARGET_LENGTH)
    return create_model(spec, weights=checkpoints["pretrained"])


@pytest.mark.parametrize("n_samples", [2800, 2801, 16000, 40000, 96000, 160000])
@pytest.mark.parametrize("target", [None, SCRIPT_TARGET_LENGTH])
def test_frame_times_match_frames(n_samples, target, pretrained, pretrained_script_length):
    model = pretrained if target is None else pretrained_script_length
    with torch.inference_mode():
        out = model(torch.randn(2, n_samples) * 0.1)
    times = model.frame_times(n_samples)
    expected_steps = -(-(1 + (n_samples - 400) // 160) // 16) if target is None else target // 16
    assert out.frames.shape == (2, expected_steps, 128) and out.embedding.shape == (2, 128)
    assert len(times) == out.frames.shape[1]
    np.testing.assert_allclose(times, np.arange(expected_steps) * STEP_S)


def test_script_length_option_reproduces_the_T1024_goldens(g, pretrained_script_length):
    with torch.inference_mode():
        out = pretrained_script_length(torch.from_numpy(g["clip6_wav"])[None])
    assert l2_rel(out.embedding[0].numpy(), g["6s_T1024_pt_utt"]) <= REL_TOL
    assert l2_rel(out.frames[0].numpy(), step_means(g["6s_T1024_pt_frame"])) <= REL_TOL


def test_min_input_gives_one_step(pretrained):
    n = pretrained.spec.min_samples
    with torch.inference_mode():
        out = pretrained(torch.randn(1, n))
    assert out.frames.shape == (1, 1, 128) and len(pretrained.frame_times(n)) == 1


@pytest.mark.parametrize("name, dim, classes", [("eat_base_epoch30", 768, 0), ("eat_base_epoch10_as2m", 768, 527)])
def test_random_weights_build_the_released_base(name, dim, classes):
    model = create_model(name, pretrained=False)
    net = model.network
    assert len(net.model.blocks) == 12 and net.model.blocks[0].attn.heads == 12
    assert net.model.modality_encoders["IMAGE"].fixed_positional_encoder.positions.shape == (1, 6144, dim)
    with torch.inference_mode():
        out = model(torch.randn(1, 16000) * 0.1)
    assert out.embedding.shape == (1, dim) and out.frames.shape == (1, 7, dim)
    assert (out.logits is None) if classes == 0 else out.logits.shape == (1, classes)


@pytest.mark.slow
def test_random_weights_build_the_released_large():
    model = create_model("eat_large_epoch20_as2m", pretrained=False)
    assert len(model.network.model.blocks) == 24 and model.network.model.blocks[0].attn.heads == 16
    with torch.inference_mode():
        out = model(torch.randn(1, 16000) * 0.1)
    assert out.logits.shape == (1, 527) and out.embedding.shape == (1, 1024) and out.frames.shape == (1, 7, 1024)


# -- through the pipeline --------------------------------------------------------------------------------
def test_tagger_end_to_end(finetuned):
    wave = demo_wave(16000)[:16000 * 8]
    tagger = Tagger(model=finetuned, window=5.0, hop=1.5, device="cpu", frames=True)
    results = list(tagger.tag_array(wave, 16000))
    assert len(results) >= 3
    steps = -(-(1 + (80000 - 400) // 160) // 16)  # 5 s window: 498 frames -> T=512 -> 32 steps
    for r in results:
        assert r.scores.shape == (527,) and r.embedding.shape == (128,) and r.frames.shape == (steps, 128)
        np.testing.assert_allclose(r.frame_times, r.start_s + np.arange(steps) * STEP_S, atol=1e-9)
    assert [r.start_s for r in results[:3]] == [0.0, 1.5, 3.0]
    with torch.inference_mode():
        direct = finetuned(torch.from_numpy(wave[:80000])[None])
    first = results[0]
    np.testing.assert_allclose(first.scores, torch.sigmoid(direct.logits)[0].numpy(), atol=1e-6)
    assert l2_rel(first.embedding, direct.embedding[0].numpy()) <= 1e-5
    assert l2_rel(first.frames, direct.frames[0].numpy()) <= 1e-5
