"""The EfficientAT front-end: reference constants, and frame sharing equal to per-window computation."""
import numpy as np
import pytest
import torch

from streamtag.models.frontends import EfficientATMel
from tests.helpers import EFFAT, golden


# The Kaldi mel scale is computed in float32, as the reference does; the last bits of its log
# depend on the torch release (2.11 made the constants; with 2.13, 57 of 65536 entries differ, by
# at most 1.8e-5; the window and pre-emphasis kernel stay bit-identical).
BANK_TOL = 2e-5


def test_constants_match_the_official_front_end():
    fe = EfficientATMel()
    with np.load(EFFAT / "frontend_constants.npz") as c:
        np.testing.assert_allclose(fe.mel_basis.numpy(), c["mel_basis"], rtol=0, atol=BANK_TOL)
        np.testing.assert_array_equal(fe.window.numpy(), c["window"])
        np.testing.assert_array_equal(fe.preemphasis_kernel.numpy().ravel(), c["preemphasis_kernel"])
    assert fe.fmax == 15000.0


@pytest.mark.parametrize("n, frames", [(32000, 100), (320000, 1000), (393600, 1230), (321, 2), (1, 1)])
def test_frame_count(n, frames):
    assert EfficientATMel().frames(n) == frames


@pytest.mark.parametrize("window, step, count", [
    (32000, 16000, 8), (320000, 80000, 4), (32000, 32000, 3), (32000, 64000, 3), (48000, 320, 5),
    (1280, 640, 6),
])
def test_shared_frames_equal_per_window_mels(window, step, count):
    fe = EfficientATMel()
    wave = torch.from_numpy(golden("mn04_as", "input_32k_mono")["wave32k"])
    span = torch.nn.functional.pad(wave, (0, max(0, (count - 1) * step + window - len(wave))))
    span = span[:(count - 1) * step + window]
    assert fe.can_share_frames(window, step)
    shared = fe.windows(span, count, step, window)
    each = fe(torch.stack([span[k * step:k * step + window] for k in range(count)]))
    assert shared.shape == each.shape == (count, 1, 128, fe.frames(window))
    # the STFT frames are bit-identical; the shared mel product may round differently (<= 3e-7)
    assert (shared - each).abs().max().item() <= 3e-7


@pytest.mark.parametrize("window, step, ok", [(32000, 16000, True), (32000, 16001, False), (1152, 320, False),
                                              (1153, 320, True)])
def test_frame_sharing_needs_aligned_steps_and_an_interior(window, step, ok):
    assert EfficientATMel().can_share_frames(window, step) is ok
