"""The model contract beyond EfficientAT: embedding-only models, frame embeddings, padding lengths."""
import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import streamtag.cli
from streamtag import ConfigError, Tagger, WeightsUnavailableError
from streamtag.models import Network, SingleModel, get_spec
from streamtag.models.frontends import Frontend
from streamtag.models.weights import resolve_weights
from streamtag.outputs import NpzSink
from streamtag.pipeline import ShortWindowWarning

FRAME = 640  # 40 ms at 16 kHz


class Samples(Frontend):
    """A front-end that passes waveforms through: one row per sample."""

    sample_rate, hop_length = 16000, 1

    def frames(self, n_samples: int) -> int:
        return n_samples

    def forward(self, wave):
        return wave


class FrameStats(Network):
    """A stand-in transformer: per 40 ms frame (mean, max); embedding = their mean; no scores."""

    masks_padding = True
    has_frames = True
    has_scores = False

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.seen_lengths: list = []

    def forward(self, wave, lengths=None, n_samples=None):
        self.seen_lengths.append(None if lengths is None else (lengths.tolist(), n_samples))
        n = wave.shape[1] // FRAME
        x = wave[:, :n * FRAME].reshape(len(wave), n, FRAME) * self.scale
        frames = torch.stack([x.mean(-1), x.amax(-1)], dim=-1)
        return None, frames.mean(1), frames

    def frame_starts(self, n_rows: int) -> np.ndarray:
        return np.arange(n_rows // FRAME) * FRAME


@pytest.fixture
def frame_model():
    spec = dataclasses.replace(get_spec("atstframe_small"), name="frame_stats", trained_window_s=2.0)
    return SingleModel(spec, Samples(), FrameStats()).eval()


@pytest.fixture
def wave():
    return (np.random.default_rng(3).standard_normal(16000 * 3 + 1234) * 0.1).astype(np.float32)


def test_frames_carry_absolute_times_and_equal_a_direct_call(frame_model, wave):
    results = list(Tagger(frame_model, window=1.0, hop=0.5, device="cpu", frames=True).tag_array(wave, 16000))
    assert len(results) == 6 and all(r.scores is None and r.top() == [] for r in results)
    for r in results:
        assert r.frames.shape == (25, 2) and r.embedding.shape == (2,)
        np.testing.assert_allclose(r.frame_times, r.start_s + np.arange(25) * 0.04)
    with torch.inference_mode():
        direct = frame_model(torch.from_numpy(wave[8000:24000])[None])
    np.testing.assert_allclose(results[1].frames, direct.frames[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(results[1].embedding, direct.embedding[0].numpy(), rtol=1e-6)


def test_only_the_padded_last_window_gets_lengths(frame_model, wave):
    list(Tagger(frame_model, window=1.0, hop=0.5, device="cpu", batch_size=8).tag_array(wave, 16000))
    seen = frame_model.network.seen_lengths
    assert seen[-1] == ([16000, 16000, 16000, 16000, 16000, wave.size - 5 * 8000], 16000)
    assert all(s is None for s in seen[:-1])  # the warm-up probe and earlier batches: no padding


def test_frames_off_by_default_and_refused_for_models_without_them(frame_model, mn04, wave):
    r = next(iter(Tagger(frame_model, window=1.0, hop=0.5, device="cpu").tag_array(wave, 16000)))
    assert r.frames is None and r.frame_times is None
    with pytest.raises(ConfigError, match="no frame-level embeddings"):
        Tagger(mn04, window=1.0, hop=0.5, device="cpu", frames=True)


def test_npz_holds_frames_and_no_scores_for_embedding_only_models(frame_model, wave, tmp_path):
    tagger = Tagger(frame_model, window=1.0, hop=0.5, device="cpu", frames=True)
    sink = NpzSink(tmp_path / "f.npz", tagger.labels, hop_s=0.5)
    tagger.subscribe(sink)
    results = list(tagger.tag_array(wave, 16000))
    sink.close()
    with np.load(tmp_path / "f.npz") as z:
        assert "scores" not in z.files
        assert z["frame_embeddings"].shape == (6, 25, 2) and z["frame_times"].shape == (6, 25)
        assert z["frame_times"].dtype == np.float64
        np.testing.assert_allclose(z["frame_times"][3], 1.5 + np.arange(25) * 0.04)
        np.testing.assert_array_equal(z["embeddings"], np.stack([r.embedding for r in results]))


def test_a_window_much_shorter_than_training_warns(frame_model):
    with pytest.warns(ShortWindowWarning, match="trained on 2 s inputs"):
        Tagger(frame_model, window=0.5, hop=0.5, device="cpu")


def test_cli_refuses_tag_outputs_for_embedding_only_models(frame_model, wave, tmp_path, monkeypatch):
    import soundfile as sf
    path = tmp_path / "a.wav"
    sf.write(path, wave, 16000)
    import streamtag.engines.job as job
    monkeypatch.setattr(job, "Tagger", lambda choice, **options: Tagger(frame_model, **options))  # the toy model
    run = lambda *a: CliRunner().invoke(streamtag.cli.main, [str(x) for x in a])  # noqa: E731
    res = run("tag", path, "--format", "csv", "--device", "cpu", "--window", 1, "--hop", 0.5)
    assert res.exit_code == 1 and "gives embeddings only" in res.output and "csv" in res.output
    res = run("tag", path, "--events", "--device", "cpu", "--window", 1, "--hop", 0.5)
    assert res.exit_code == 1 and "so events cannot be written" in res.output
    res = run("tag", path, "--frames", "--format", "jsonl", "--device", "cpu")
    assert res.exit_code == 1 and "frame embeddings are written to NPZ output only" in res.output
    out = tmp_path / "x.npz"
    res = run("tag", path, "--frames", "-o", out, "--device", "cpu", "--window", 1, "--hop", 0.5, "--quiet")
    assert res.exit_code == 0, res.output
    with np.load(out) as z:
        assert z["frame_embeddings"].shape == (6, 25, 2)
    res = run("tag", path, "--device", "cpu", "--window", 0.5, "--hop", 0.5)
    assert res.exit_code == 0 and "warning: frame_stats was trained on 2 s inputs" in res.output
    assert "embeddings only (2-d; NPZ output holds them)" in res.output


def test_weights_behind_a_browser_page_name_the_page_and_the_destination(monkeypatch, isolated_home):
    monkeypatch.delenv("STREAMTAG_DOWNLOAD_BASE")
    spec = get_spec("atstframe_small")
    with pytest.raises(WeightsUnavailableError) as e:
        resolve_weights(spec)
    msg = str(e.value)
    assert spec.page in msg and str(isolated_home / "atstframe_small.ckpt") in msg and "\n" not in msg
