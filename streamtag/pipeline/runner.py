"""Runs a model on batches of windows on the chosen device and returns numpy scores and embeddings."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..models.factory import TaggingModel

DEFAULT_BATCH = {"cpu": 8, "cuda": 64}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; an unavailable or unknown device is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r} (use auto, cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available (use --device cpu or auto)")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r} (use auto, cpu or cuda)")
    return dev


class ModelRunner:
    """Holds a model on a device; `infer([B, N] float32)` -> (scores [B, C] | None, embeddings [B, D])."""

    def __init__(self, model: TaggingModel, device: str | torch.device = "auto") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()

    def infer(self, windows: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        with torch.inference_mode():
            logits, embedding = self.model(x)
            scores = None if logits is None else torch.sigmoid(logits).float().cpu().numpy()
            return scores, embedding.float().cpu().numpy()
