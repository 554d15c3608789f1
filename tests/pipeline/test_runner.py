"""The model runner: devices, precisions and the frozen CPU path (the CUDA path's dtype handling runs here too)."""
import numpy as np
import pytest
import torch

from streamtag.errors import ConfigError
from streamtag.models import RunTarget
from streamtag.models.devices import resolve_device
from streamtag.pipeline.backend import default_batch_size
from streamtag.pipeline.runner import ModelRunner


@pytest.fixture(scope="module")
def mn10_seeded(random_checkpoint):
    """The mn10_as architecture (960-d) with seeded random weights built here."""
    from streamtag import create_model
    return create_model("mn10_as", weights=random_checkpoint("mn10_as"))


@pytest.fixture(scope="module")
def span():
    rng = np.random.default_rng(3)
    return (rng.standard_normal(3 * 16000 + 32000) * 0.05).astype(np.float32)


def test_frozen_network_matches_eager(mn10_seeded, span):
    frozen = ModelRunner(mn10_seeded, RunTarget("cpu", optimize=True))
    eager = ModelRunner(mn10_seeded, RunTarget("cpu", optimize=False))
    s1, e1, _ = frozen.infer_span(span, 4, 16000, 32000)
    s2, e2, _ = eager.infer_span(span, 4, 16000, 32000)
    assert s1.dtype == e1.dtype == np.float32 and s1.shape == (4, 527) and e1.shape == (4, 960)
    assert np.abs(s1 - s2).max() <= 1e-4
    assert frozen._ready.frozen and not eager._ready.frozen and not mn10_seeded.frozen  # it really froze


def test_shared_frames_match_stacked_windows(mn10_seeded, span):
    r = ModelRunner(mn10_seeded, RunTarget("cpu", optimize=False))
    s1, e1, _ = r.infer_span(span, 4, 16000, 32000)
    s2, e2, _ = r.infer(np.stack([span[k * 16000:k * 16000 + 32000] for k in range(4)]))
    assert np.abs(s1 - s2).max() <= 1e-5 and np.abs(e1 - e2).max() <= 1e-4


def test_bf16_autocast_returns_float32_of_the_right_shapes(mn04, span):
    """The reduced-precision path used on GPUs, exercised on CPU with bfloat16."""
    r = ModelRunner(mn04, RunTarget("cpu", precision="bf16"))
    scores, emb, _ = r.infer_span(span, 4, 16000, 32000)
    ref = ModelRunner(mn04, RunTarget("cpu", optimize=False)).infer_span(span, 4, 16000, 32000).scores
    assert scores.dtype == emb.dtype == np.float32 and scores.shape == (4, 527) and emb.shape == (4, 384)
    assert np.abs(scores - ref).max() < 0.1


def test_precision_and_device_errors(mn04):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        ModelRunner(mn04, RunTarget("cpu", precision="fp16"))
    with pytest.raises(ConfigError, match="precision must be one of"):
        ModelRunner(mn04, RunTarget("cpu", precision="int8"))
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("device, window_s, batch", [("cpu", 1.0, 32), ("cpu", 10.0, 4), ("cpu", 0.1, 32),
                                                      ("cpu", 60.0, 4), ("cuda", 10.0, 64), ("cuda", 1.0, 256)])
def test_default_batch_size(device, window_s, batch):
    assert default_batch_size(torch.device(device), window_s) == batch


@pytest.mark.device
def test_cuda_runner_matches_cpu(mn04, span):
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    cpu = ModelRunner(mn04, RunTarget("cpu", optimize=False)).infer_span(span, 4, 16000, 32000).scores
    gpu = ModelRunner(mn04, RunTarget("cuda")).infer_span(span, 4, 16000, 32000).scores
    assert np.abs(cpu - gpu).max() <= 1e-4
    mn04.to("cpu")
