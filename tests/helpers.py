"""Paths to the test material and comparison helpers.

Everything a fresh clone has (the bundled mn04_as and labels, `demos/`, the small goldens in
`tests/data/`) is always available. The larger material (goldens of every family, random-weight
fixtures, the 60 s mix) lives in the project's `../shared` folder, which only development and CI
machines have; tests that need it are marked `needs_shared` (or use a fixture that calls
`require_shared()`) and skip with SHARED_MISSING when it is absent.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAMTAG_SHARED", ROOT.parent / "shared"))
SHARED_MISSING = f"needs the project's shared test material at {SHARED} (not part of a clone)"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=SHARED_MISSING)

# always available: the embedded default, the demo clip and tests/data
ASSETS = ROOT / "streamtag" / "assets"
MN04_WEIGHTS = ASSETS / "mn04_as_mAP_432.pt"
LABELS_CSV = ASSETS / "class_labels_indices.csv"
DEMO_CLIP = ROOT / "demos" / "speech_dog_12s.flac"  # 12.5 s, 44.1 kHz stereo: speech, then a dog
DATA = ROOT / "tests" / "data"
CLIP32 = DATA / "whale_32k_mono_3s.flac"  # the first 3 s of the official mono input (see tests/data/README.md)
CLIP44 = DATA / "whale_44k1_stereo_2.6s.flac"  # the first 2.6 s of the official stereo input
MN04_GOLDEN = DATA / "mn04_as_golden.npz"

# ../shared only
EFFAT = SHARED / "fixtures" / "efficientat"
SHARED_LABELS_CSV = SHARED / "models" / "class_labels_indices.csv"
MN10_RANDOM = EFFAT / "mn10_as_random.pt"
DYMN04_RANDOM = EFFAT / "dymn04_as_random.pt"
LONG_MIX = SHARED / "audio" / "long_mix_44k1.wav"
# log-mels against the goldens' (torch 2.11) mels: float32 rounding of the mel bank's log differs
# between torch releases (<= 1.5e-5 with 2.13); scores and embeddings keep their own tolerances
MEL_TOL = 5e-5


@functools.cache
def _demo_wave(rate: int) -> np.ndarray:
    from streamtag.audio import FileSource
    return np.concatenate(list(FileSource(DEMO_CLIP).blocks(rate)))


def demo_wave(rate: int) -> np.ndarray:
    """The demo clip as the pipeline feeds it to a model at `rate`: mono float32 (a copy)."""
    return _demo_wave(rate).copy()


def under_reproducible_mkl(setup: str, expr: str, path: str = "COMPATIBLE") -> np.ndarray:
    """`expr` (an array), after `setup`, in a fresh Python whose MKL takes code path `path` (MKL_CBWR; by default its
    reproducible one: torch's float32 log is then the goldens' on every x86 CPU, Intel's fast paths differ by up to
    2 ulp)."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "out.npy")
        code = f"import sys\nimport numpy as np\n{setup}\nnp.save(sys.argv[1], np.asarray({expr}))"
        subprocess.run([sys.executable, "-c", code, out], check=True, timeout=120, cwd=ROOT,
                       env={**os.environ, "MKL_CBWR": path})
        return np.load(out)


def require_shared() -> None:
    """Skip the calling test (or fixture) when ../shared is absent."""
    if not SHARED.is_dir():
        pytest.skip(SHARED_MISSING)


def fixture_files(files: dict[str, Path], synthesize, folder: Path) -> dict[str, Path]:
    """The ../shared fixture checkpoints, or (a fresh clone) `synthesize(kind, path)` of each into `folder`:
    random weights of the same reduced architecture, in the same official layout."""
    if SHARED.is_dir():
        return dict(files)
    return {kind: synthesize(kind, folder / path.name) for kind, path in files.items()}


def load_npz(path: Path) -> dict:
    """Every array of an .npz file, read into memory."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def golden(model: str, inp: str) -> dict:
    require_shared()
    return load_npz(EFFAT / f"{model}__{inp}.npz")


def rel_err(e: np.ndarray, ref: np.ndarray) -> float:
    """Per-vector max|e - ref| / max|ref|, worst over rows (the fixtures' embedding metric)."""
    e, ref = np.atleast_2d(e), np.atleast_2d(ref)
    return float((np.abs(e - ref).max(axis=1) / np.abs(ref).max(axis=1)).max())
