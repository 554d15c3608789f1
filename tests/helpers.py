"""Paths to the shared test material and comparison helpers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EFFAT = SHARED / "fixtures" / "efficientat"
LABELS_CSV = SHARED / "models" / "class_labels_indices.csv"
MN04_WEIGHTS = SHARED / "models" / "mn04_as_mAP_432.pt"
MN10_RANDOM = EFFAT / "mn10_as_random.pt"
LONG_MIX = SHARED / "audio" / "long_mix_44k1.wav"


def load_npz(path: Path) -> dict:
    """Every array of an .npz file, read into memory."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def golden(model: str, inp: str) -> dict:
    return load_npz(EFFAT / f"{model}__{inp}.npz")


def rel_err(e: np.ndarray, ref: np.ndarray) -> float:
    """Per-vector max|e - ref| / max|ref|, worst over rows (the fixtures' embedding metric)."""
    e, ref = np.atleast_2d(e), np.atleast_2d(ref)
    return float((np.abs(e - ref).max(axis=1) / np.abs(ref).max(axis=1)).max())
