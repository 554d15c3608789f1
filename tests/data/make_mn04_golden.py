"""Writes tests/data's small mn04_as golden from the official goldens in ../shared (run from the project root).

Every number is copied from `../shared/fixtures/efficientat/mn04_as__*.npz` (computed by the official
EfficientAT code); the audio files are the first seconds of that folder's input WAVs, losslessly.
"""
from pathlib import Path

import numpy as np
import soundfile as sf

EFFAT = Path("../shared/fixtures/efficientat")
DATA = Path("tests/data")
INPUTS = {"mono32k": ("input_32k_mono", "whale_32k_mono_3s.flac", 3.0, 5),
          "stereo44k": ("input_44k1_stereo", "whale_44k1_stereo_2.6s.flac", 2.6, 4)}


def main() -> None:
    out = {}
    for key, (name, flac, seconds, windows) in INPUTS.items():
        audio, rate = sf.read(EFFAT / f"{name}.wav", dtype="int16")
        sf.write(DATA / flac, audio[:round(seconds * rate)], rate, subtype="PCM_16")
        with np.load(EFFAT / f"mn04_as__{name}.npz") as g:
            for field in ("start_s", "end_s", "scores", "embeddings"):
                out[f"{key}_w1_{field}"] = g[f"w1_{field}"][:windows]
            if key == "mono32k":
                out["mono32k_mel_first_window"] = g["mel_first_window"]
    with np.load(EFFAT / "mn04_as__short_clips.npz") as s:  # clips of 0.4, 0.7 and 1.0 s: one padded window
        out["short_n_samples"] = s["n_samples"][:3]
        for case in ("c0", "c1", "c2"):
            for w in ("w1", "w10"):
                out[f"{case}_{w}_padded_scores"] = s[f"{case}_{w}_padded_scores"]
                out[f"{case}_{w}_padded_embedding"] = s[f"{case}_{w}_padded_embedding"]
    np.savez_compressed(DATA / "mn04_as_golden.npz", **out)


if __name__ == "__main__":
    main()
