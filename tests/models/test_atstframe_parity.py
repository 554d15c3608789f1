"""Golden parity with the official ATST-Frame code (../shared/fixtures/atstframe), from the files on disk."""
import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from streamtag import Tagger, create_model
from streamtag.cli import main
from streamtag.errors import WeightsError
from streamtag.models.atstframe import ATSTFrame, FrameASTConfig, network_from_checkpoint
from streamtag.models.weights import read_checkpoint
from tests.helpers import EFFAT, MN04_WEIGHTS, MN10_RANDOM, SHARED, demo_wave, load_npz, needs_shared, require_shared

ATST = SHARED / "fixtures" / "atstframe"
CKPT = ATST / "atstframe_small_depth2_random.ckpt"
GOLDENS = ATST / "goldens_atstframe_small_depth2.npz"
MEL_TOL, EMB_TOL = 1e-4, 1e-3  # README: mel absolute; embeddings ||a - b|| / ||golden|| per array
RATE, WIDTH = 16000, 384
CASES = ["6s", "14s", "batch"]
EDGE_SAMPLES = 160160  # 1002 mel frames: a full chunk plus a 1-frame chunk with no tokens
# The fixture's reduced architecture (ATST-Frame small, depth 2), for the file synthesized without ../shared:
# its Lightning `hyper_parameters` as stored, and the encoder shape they and the tensors give
SMALL_HPARAMS = {
    "arch": "small", "learning_rate": 0.0016, "warmup_steps": 1950, "max_steps": 58500, "ema": 0.997,
    "symmetric": True, "pos_type": "cut", "avg_blocks": 0, "patch_embed": "Linear", "save_path": "SAVE_PATH",
    "nproc": 4, "patch_h": 64, "patch_w": 4, "nprompt": 0, "data_path": "DATA_PATH", "batch_size_per_gpu": 256,
    "num_workers": 10, "subset": 200000, "win_length": 1024, "aug_tea": False, "aug_stu": True, "freq_wrap": True,
    "mix_up": True, "anchor_len": 10.0, "mask_ratio": 0.65, "mask_len": 5, "min_mask_len": 2, "n_mels": 64,
    "mask_type": "block", "spec_h": 64,
}
SMALL_ENCODER = FrameASTConfig(embed_dim=WIDTH, depth=2, num_heads=6, mlp_dim=4 * WIDTH)


def l2_rel(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


@pytest.fixture(scope="module")
def goldens() -> dict:
    require_shared()
    return load_npz(GOLDENS)


def synthesize_checkpoint(path):
    """A random-weight file of the fixture's architecture in the released Lightning layout: fp16 `state_dict`
    with the student and the (used) teacher encoders, `model.{student,teacher}.encoder.*`, and `hyper_parameters`.
    The pre-training projector / predictor heads, which the loader never reads, are left out."""
    state = {}
    for seed, role in ((1, "student"), (0, "teacher")):
        torch.manual_seed(seed)
        encoder = ATSTFrame(SMALL_ENCODER).encoder
        torch.nn.init.normal_(encoder.mask_embed, std=0.02)
        state.update({f"model.{role}.encoder.{k}": v.half() for k, v in encoder.state_dict().items()})
    torch.save({"epoch": 0, "global_step": 0, "pytorch-lightning_version": "2.2.1", "state_dict": state,
                "hparams_name": "kwargs", "hyper_parameters": dict(SMALL_HPARAMS)}, path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The fixture file of ../shared, or (a fresh clone) a random one of the same architecture and layout."""
    if SHARED.is_dir():
        return CKPT
    return synthesize_checkpoint(tmp_path_factory.mktemp("atstframe_checkpoints") / CKPT.name)


@pytest.fixture(scope="module")
def model(checkpoint):
    return create_model("atstframe_small", weights=checkpoint)


@pytest.fixture(scope="module")
def networks(model, checkpoint) -> dict:
    """The network per N_BLOCKS: 12 as create_model builds it, 1 through the constructor parameter."""
    one = network_from_checkpoint(read_checkpoint(checkpoint), str(checkpoint), "atstframe_small", n_blocks=1).eval()
    return {12: model.network, 1: one}


@needs_shared
def test_synthesized_checkpoint_has_the_fixture_layout(tmp_path):
    """The checkpoint used without ../shared stays faithful to the fixture file (hyper-parameters, encoder tensors)."""
    ours = torch.load(synthesize_checkpoint(tmp_path / "synth.ckpt"), weights_only=True)
    theirs = torch.load(CKPT, map_location="cpu", weights_only=True)
    assert set(ours) <= set(theirs) and ours["hyper_parameters"] == theirs["hyper_parameters"]
    encoders = {k: (tuple(v.shape), v.dtype) for k, v in theirs["state_dict"].items() if ".encoder." in k}
    assert {k: (tuple(v.shape), v.dtype) for k, v in ours["state_dict"].items()} == encoders


def wave_of(goldens: dict, case: str) -> torch.Tensor:
    if case == "edge10s01":
        return torch.from_numpy(goldens["14s_wav"][:, :EDGE_SAMPLES])
    w = goldens[f"{case}_wav"]
    return torch.from_numpy(w.reshape(w.shape[0], w.shape[-1]))  # [B, 1, N] -> [B, N]


def test_checkpoint_shape_comes_from_the_file(model):
    config = model.network.encoder.config
    assert (config.embed_dim, config.depth, config.num_heads, config.mlp_dim) == (WIDTH, 2, 6, 1536)
    assert (config.patch_h, config.patch_w, config.max_tokens) == (64, 4, 250)
    assert model.network.n_blocks == 12 and model.spec.num_classes == 0


@pytest.mark.parametrize("case", CASES)
def test_front_end_matches_golden_mel(case, goldens, model):
    with torch.inference_mode():
        mel = model.frontend(wave_of(goldens, case)).numpy()
    assert mel.shape == goldens[f"{case}_mel"].shape
    assert np.abs(mel - goldens[f"{case}_mel"]).max() <= MEL_TOL


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("n_blocks", [12, 1])
def test_scene_and_timestamp_embeddings_match_goldens(case, n_blocks, goldens, model, networks):
    with torch.inference_mode():
        logits, scene, frames = networks[n_blocks](model.frontend(wave_of(goldens, case)))
    n = wave_of(goldens, case).shape[1]
    assert logits is None
    ts, times = goldens[f"{case}_ts_nb{n_blocks}"], goldens[f"{case}_t_nb{n_blocks}"]
    assert frames.shape == ts.shape and scene.shape == goldens[f"{case}_scene_nb{n_blocks}"].shape
    assert l2_rel(frames.numpy(), ts) <= EMB_TOL
    assert l2_rel(scene.numpy(), goldens[f"{case}_scene_nb{n_blocks}"]) <= EMB_TOL  # N_BLOCKS ignored
    for row in times:  # the reference's timestamps (ms) are the same for every item
        np.testing.assert_allclose(model.frame_times(n) * 1000.0, row, atol=1e-6)


def demo_input(case: str) -> torch.Tensor:
    """An input shaped like the golden case's, cut from the demo clip (tiled to 14 s): [B, N]."""
    wave = np.resize(demo_wave(RATE), 14 * RATE)
    if case == "batch":
        return torch.from_numpy(np.stack([wave[i * 3 * RATE:][:2 * RATE] for i in range(3)]))
    return torch.from_numpy(wave[:int(case.removesuffix("s")) * RATE])[None]


@pytest.mark.parametrize("case", CASES)
def test_one_block_is_the_last_block_of_twelve(case, model, networks):
    with torch.inference_mode():
        mel = model.frontend(demo_input(case))
        frames12, frames1 = networks[12](mel)[2], networks[1](mel)[2]
    assert torch.equal(frames1, frames12[..., -WIDTH:])


def test_mel_frame_past_a_full_chunk_adds_a_zero_scene_vector(goldens, model, networks):
    """edge10s01: chunks of 1001 and 1 mel frames; the second has no tokens but counts in the scene mean."""
    wave = wave_of(goldens, "edge10s01")
    with torch.inference_mode():
        mel = model.frontend(wave)
        _, scene, frames12 = networks[12](mel)
        _, scene1, frames = networks[1](mel)
        _, first_chunk_scene, _ = networks[12](mel[..., :1001])
    assert mel.shape[-1] == 1002
    assert l2_rel(scene.numpy(), goldens["edge10s01_scene_nb12"]) <= EMB_TOL
    assert torch.equal(scene, scene1)
    assert frames.shape == goldens["edge10s01_ts_nb1"].shape == (1, 250, WIDTH)
    assert l2_rel(frames.numpy(), goldens["edge10s01_ts_nb1"]) <= EMB_TOL
    np.testing.assert_allclose(model.frame_times(EDGE_SAMPLES) * 1000.0, goldens["edge10s01_t_nb1"][0], atol=1e-6)
    torch.testing.assert_close(scene, first_chunk_scene / 2)


@pytest.mark.parametrize("n_samples, n_frames", [
    (640, 1), (16000, 25), (159999, 250), (160000, 250), (160160, 250), (160800, 251), (176000, 275),
    (224000, 350), (400000, 624)])
def test_frame_times_length_equals_the_frames(n_samples, n_frames, model):
    wave = torch.from_numpy(np.resize(demo_wave(RATE), n_samples))[None]
    with torch.inference_mode():
        out = model(wave)
    times = model.frame_times(n_samples)
    assert out.frames.shape == (1, n_frames, 2 * WIDTH) and len(times) == n_frames
    np.testing.assert_allclose(times, np.arange(n_frames) * 0.04, atol=1e-12)


def _rewritten_checkpoint(tmp_path, source, change) -> str:
    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    change(ckpt)
    path = tmp_path / "changed.ckpt"
    torch.save(ckpt, path)
    return str(path)


def _student_only(ckpt: dict) -> None:
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("model.teacher.")}


def _missing_final_norm(ckpt: dict) -> None:
    del ckpt["state_dict"]["model.teacher.encoder.norm_frame.bias"]


def _wider_patches(ckpt: dict) -> None:
    ckpt["hyper_parameters"]["patch_w"] = 16


def _cls_positions(ckpt: dict) -> None:
    ckpt["hyper_parameters"]["pos_type"] = "interpolate"


@pytest.mark.parametrize("change, says", [
    (_student_only, "model.teacher.encoder"),
    (_missing_final_norm, "norm_frame.bias"),
    (_wider_patches, "patch"),
    (_cls_positions, "pos_type"),
])
def test_checkpoint_of_another_layout_raises_naming_the_file(change, says, tmp_path, checkpoint):
    path = _rewritten_checkpoint(tmp_path, checkpoint, change)
    with pytest.raises(WeightsError) as e:
        create_model("atstframe_small", weights=path)
    assert path in str(e.value) and says in str(e.value)


@pytest.mark.parametrize("path", [MN04_WEIGHTS, pytest.param(MN10_RANDOM, marks=needs_shared),
                                  pytest.param(EFFAT / "dymn04_as_random.pt", marks=needs_shared)],
                         ids=lambda path: path.stem)
def test_checkpoint_of_another_family_raises_naming_the_file(path):
    with pytest.raises(WeightsError, match="model.teacher.encoder") as e:
        create_model("atstframe_small", weights=path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("name, width, heads", [("atstframe_small", 384, 6), ("atstframe_base", 768, 12)])
def test_random_weights_build_the_released_architecture(name, width, heads):
    model = create_model(name, pretrained=False)
    config = model.network.encoder.config
    assert (config.embed_dim, config.depth, config.num_heads, config.mlp_dim) == (width, 12, heads, 4 * width)
    assert config.max_tokens == 250 and model.weights is None
    with torch.inference_mode():
        out = model(torch.randn(2, RATE))
    assert out.logits is None
    assert out.embedding.shape == (2, 12 * width) == (2, model.spec.embedding_dim)
    assert out.frames.shape == (2, 25, 12 * width) and out.frames.shape[-1] == model.spec.frame_dim
    assert len(model.frame_times(RATE)) == 25


def test_tagger_gives_frames_with_absolute_times(model):
    wave = demo_wave(RATE)  # 12.5 s
    tagger = Tagger(model=model, window=10.0, hop=2.0, device="cpu", frames=True)
    results = list(tagger.tag_array(wave, RATE))
    assert len(results) >= 3
    for r in results:
        assert r.scores is None and r.embedding.shape == (2 * WIDTH,) and r.frames.shape == (250, 2 * WIDTH)
        np.testing.assert_allclose(r.frame_times, r.start_s + np.arange(250) * 0.04, atol=1e-9)
    assert [r.start_s for r in results[:3]] == [0.0, 2.0, 4.0]
    with torch.inference_mode():
        direct = model(torch.from_numpy(wave[:10 * RATE])[None])
        last = results[-1]
        padded = np.zeros(10 * RATE, np.float32)
        tail = wave[last.start_sample:last.end_sample]
        padded[:len(tail)] = tail
        direct_last = model(torch.from_numpy(padded)[None])
    np.testing.assert_allclose(results[0].embedding, direct.embedding[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[0].frames, direct.frames[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(last.embedding, direct_last.embedding[0].numpy(), rtol=1e-5, atol=1e-6)


def test_cli_writes_frame_embeddings_to_npz(tmp_path, model, checkpoint):
    wav, out = tmp_path / "clip.wav", tmp_path / "x.npz"
    wave = demo_wave(RATE)  # 12.5 s
    sf.write(wav, wave, RATE, subtype="FLOAT")
    res = CliRunner().invoke(main, ["tag", str(wav), "--model", "atstframe_small", "--weights", str(checkpoint),
                                    "--window", "10", "--hop", "5", "--format", "npz", "-o", str(out),
                                    "--frames", "--device", "cpu", "--quiet"])
    assert res.exit_code == 0, res.output
    with np.load(out) as z:
        k = len(z["start_s"])
        assert k >= 2 and "scores" not in z.files and str(z["model"]) == "atstframe_small"
        assert z["embeddings"].shape == (k, 2 * WIDTH)
        assert z["frame_embeddings"].shape == (k, 250, 2 * WIDTH) and z["frame_times"].shape == (k, 250)
        np.testing.assert_allclose(z["frame_times"], z["start_s"][:, None] + np.arange(250) * 0.04, atol=1e-9)
        np.testing.assert_allclose(z["start_s"][:2], [0.0, 5.0])
        with torch.inference_mode():
            direct = model(torch.from_numpy(wave[:10 * RATE])[None])
        np.testing.assert_allclose(z["embeddings"][0], direct.embedding[0].numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(z["frame_embeddings"][0], direct.frames[0].numpy(), rtol=1e-5, atol=1e-5)
