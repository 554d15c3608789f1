"""Which torch device a run target names ('auto' picks CUDA when present)."""
from __future__ import annotations

import difflib

import torch

from ..errors import ConfigError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; an unavailable or unknown device is an error."""
    if isinstance(device, torch.device):
        return device
    device = str(device).strip().lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        close = difflib.get_close_matches(device, ["auto", "cpu", "cuda"], n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown device {device!r} ({hint}use auto, cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available (use device cpu or auto)")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r} (use auto, cpu or cuda)")
    return dev


__all__ = ["resolve_device"]
