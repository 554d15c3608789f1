"""Golden parity with the official EfficientAT code: the bundled mn04_as against tests/data (always), and
every EfficientAT fixture against ../shared/fixtures/efficientat."""
import numpy as np
import pytest
import soundfile as sf
import torch

from streamtag import Tagger, create_model
from streamtag.pipeline.export_runner import ExportRunner
from tests.helpers import (CLIP32, CLIP44, EFFAT, LABELS_CSV, MEL_TOL, MN04_GOLDEN, MN04_WEIGHTS, MN10_RANDOM, golden,
                           load_npz, needs_shared, rel_err)

SCORE_TOL, EMB_TOL = 1e-4, 1e-3
CASES = [(m, i) for m in ("mn04_as", "mn10_as_random", "dymn04_as_random")
         for i in ("input_32k_mono", "input_44k1_stereo")]
SETTINGS = [("w1", 1.0, 0.5), ("w10", 10.0, 2.5)]


@pytest.fixture(scope="module")
def small_golden():
    return load_npz(MN04_GOLDEN)


# openvino / onnxruntime: the torch front-end feeding the export; openvino-numpy: the cached export without torch
RUNTIMES = ["torch", "openvino", "openvino-numpy", "onnxruntime"]


def tagger_for(name, weights, built, runtime, **options):
    """A Tagger on `runtime`: torch or the torch-front-end export from the built model, the numpy path by name."""
    if runtime != "openvino-numpy":
        return Tagger(built, runtime=runtime, **options)
    Tagger(built, runtime="openvino", **options).warm_up()  # the export, made now if the cache lacks it
    tagger = Tagger(name, weights=weights, runtime="openvino", **options)
    assert isinstance(tagger.runner, ExportRunner)
    return tagger


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("key, clip", [("mono32k", CLIP32), ("stereo44k", CLIP44)])
def test_bundled_mn04_matches_the_official_windows(key, clip, runtime, small_golden, isolated_home):
    """The default install's model (no explicit weights: the bundled file) on the first seconds of the inputs."""
    g = small_golden
    tagger = tagger_for("mn04_as", None, create_model("mn04_as"), runtime, window=1.0, hop=0.5, device="cpu")
    results = list(tagger.tag_file(clip))
    assert tagger.runner._ready.runtime == {"torch": "torchscript", "onnxruntime": "onnxruntime"}.get(runtime,
                                                                                                     "openvino")
    n = len(g[f"{key}_w1_scores"])
    assert len(results) >= n
    np.testing.assert_allclose([r.start_s for r in results[:n]], g[f"{key}_w1_start_s"], atol=1e-9)
    np.testing.assert_allclose([r.end_s for r in results[:n]], g[f"{key}_w1_end_s"], atol=1e-9)
    assert np.abs(np.stack([r.scores for r in results[:n]]) - g[f"{key}_w1_scores"]).max() <= SCORE_TOL
    assert rel_err(np.stack([r.embedding for r in results[:n]]), g[f"{key}_w1_embeddings"]) <= EMB_TOL


def test_bundled_mn04_front_end_matches_the_official_mel(mn04, small_golden):
    wave = torch.from_numpy(sf.read(CLIP32, dtype="float32")[0][:32000])
    with torch.inference_mode():
        mel = mn04.frontend(wave[None])[0, 0].numpy()
    np.testing.assert_allclose(mel, small_golden["mono32k_mel_first_window"], rtol=0, atol=MEL_TOL)


@pytest.mark.parametrize("case", [0, 1, 2])
@pytest.mark.parametrize("key, window, hop", SETTINGS)
def test_bundled_mn04_short_clips_get_one_padded_window(case, key, window, hop, mn04, small_golden):
    g = small_golden
    wave = sf.read(CLIP32, dtype="float32")[0][:int(g["short_n_samples"][case])]
    results = list(Tagger(mn04, window=window, hop=hop, device="cpu").tag_array(wave, 32000))
    assert len(results) == 1
    assert np.abs(results[0].scores - g[f"c{case}_{key}_padded_scores"][0]).max() <= SCORE_TOL
    assert rel_err(results[0].embedding, g[f"c{case}_{key}_padded_embedding"]) <= EMB_TOL


@pytest.fixture
def models(mn04, mn10_random, dymn04_random):
    return {"mn04_as": mn04, "mn10_as_random": mn10_random, "dymn04_as_random": dymn04_random}


WEIGHTS = {"mn04_as": ("mn04_as", MN04_WEIGHTS), "mn10_as_random": ("mn10_as", MN10_RANDOM)}


@pytest.mark.parametrize("model_name, inp, runtime", [(m, i, r) for m, i in CASES
                                                    for r in RUNTIMES if r == "torch" or "dymn" not in m])
@pytest.mark.parametrize("key, window, hop", SETTINGS)
def test_tag_file_matches_golden_windows(model_name, inp, runtime, key, window, hop, models):
    g = golden(model_name, inp)
    name, weights = WEIGHTS.get(model_name, (model_name, None))
    tagger = tagger_for(name, weights, models[model_name], runtime, window=window, hop=hop, labels=LABELS_CSV,
                        device="cpu")
    results = list(tagger.tag_file(EFFAT / f"{inp}.wav"))
    assert [r.index for r in results] == list(range(len(g[f"{key}_scores"])))
    np.testing.assert_allclose([r.start_s for r in results], g[f"{key}_start_s"], atol=1e-9)
    np.testing.assert_allclose([r.end_s for r in results], g[f"{key}_end_s"], atol=1e-9)
    scores = np.stack([r.scores for r in results])
    emb = np.stack([r.embedding for r in results])
    assert scores.dtype == np.float32 and emb.dtype == np.float32
    assert np.abs(scores - g[f"{key}_scores"]).max() <= SCORE_TOL
    assert rel_err(emb, g[f"{key}_embeddings"]) <= EMB_TOL


@pytest.mark.parametrize("model_name, inp", CASES)
def test_front_end_clip_and_batch(model_name, inp, models):
    g = golden(model_name, inp)
    model = models[model_name]
    wave = torch.from_numpy(g["wave32k"])
    last = torch.nn.functional.pad(wave[23 * 16000:], (0, 32000 - (len(wave) - 23 * 16000)))
    with torch.inference_mode():
        mels = model.frontend(torch.stack([wave[:32000], last]))
        assert mels.shape == (2, 1, 128, 100)
        np.testing.assert_allclose(mels[0, 0].numpy(), g["mel_first_window"], rtol=0, atol=MEL_TOL)
        np.testing.assert_allclose(mels[1, 0].numpy(), g["mel_last_window"], rtol=0, atol=MEL_TOL)
        logits, emb, _ = model(wave[None])  # whole clip: 1230 frames
        assert np.abs(torch.sigmoid(logits)[0].numpy() - g["clip_scores"]).max() <= SCORE_TOL
        assert rel_err(emb[0].numpy(), g["clip_embedding"]) <= EMB_TOL
        logits, emb = model.network(torch.from_numpy(g["batch_mel"]))
        assert np.abs(torch.sigmoid(logits).numpy() - g["batch_scores"]).max() <= SCORE_TOL
        assert rel_err(emb.numpy(), g["batch_embeddings"]) <= EMB_TOL


@needs_shared
@pytest.mark.parametrize("case", ["c0", "c1", "c2", "c3"])
@pytest.mark.parametrize("key, window, hop", SETTINGS)
def test_short_clips_follow_the_window_rule(case, key, window, hop, mn04):
    """Clips shorter than a window get one zero-padded window (where EATagger may give none)."""
    s = load_npz(EFFAT / "mn04_as__short_clips.npz")
    n = int(s["n_samples"][int(case[1])])
    wave = golden("mn04_as", "input_32k_mono")["wave32k"][:n]
    tagger = Tagger(mn04, window=window, hop=hop, labels=LABELS_CSV, device="cpu")
    results = list(tagger.tag_array(wave, 32000))
    W = int(window * 32000)
    if n <= W:
        assert len(results) == 1
        assert np.abs(results[0].scores - s[f"{case}_{key}_padded_scores"][0]).max() <= SCORE_TOL
        assert rel_err(results[0].embedding, s[f"{case}_{key}_padded_embedding"]) <= EMB_TOL
    else:
        assert len(results) == int(s[f"{case}_{key}_n_windows"])
        scores = np.stack([r.scores for r in results])
        assert np.abs(scores - s[f"{case}_{key}_scores"]).max() <= SCORE_TOL
