"""Golden parity with the official EfficientAT code (../shared/fixtures/efficientat), from the files on disk."""
import numpy as np
import pytest
import torch

from streamtag import Tagger
from tests.helpers import EFFAT, LABELS_CSV, golden, load_npz, rel_err

SCORE_TOL, EMB_TOL = 1e-4, 1e-3
CASES = [(m, i) for m in ("mn04_as", "mn10_as_random", "dymn04_as_random")
         for i in ("input_32k_mono", "input_44k1_stereo")]
SETTINGS = [("w1", 1.0, 0.5), ("w10", 10.0, 2.5)]


@pytest.fixture(scope="module")
def dymn04_random():
    from streamtag import create_model
    return create_model("dymn04_as", weights=EFFAT / "dymn04_as_random.pt")


@pytest.fixture
def models(mn04, mn10_random, dymn04_random):
    return {"mn04_as": mn04, "mn10_as_random": mn10_random, "dymn04_as_random": dymn04_random}


@pytest.mark.parametrize("model_name, inp", CASES)
@pytest.mark.parametrize("key, window, hop", SETTINGS)
def test_tag_file_matches_golden_windows(model_name, inp, key, window, hop, models):
    g = golden(model_name, inp)
    tagger = Tagger(models[model_name], window=window, hop=hop, labels=LABELS_CSV,
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
        np.testing.assert_array_equal(mels[0, 0].numpy(), g["mel_first_window"])
        np.testing.assert_array_equal(mels[1, 0].numpy(), g["mel_last_window"])
        logits, emb, _ = model(wave[None])  # whole clip: 1230 frames
        assert np.abs(torch.sigmoid(logits)[0].numpy() - g["clip_scores"]).max() <= SCORE_TOL
        assert rel_err(emb[0].numpy(), g["clip_embedding"]) <= EMB_TOL
        logits, emb = model.network(torch.from_numpy(g["batch_mel"]))
        assert np.abs(torch.sigmoid(logits).numpy() - g["batch_scores"]).max() <= SCORE_TOL
        assert rel_err(emb.numpy(), g["batch_embeddings"]) <= EMB_TOL


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
