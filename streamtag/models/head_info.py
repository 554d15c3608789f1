"""What a head file says about itself, and the head settings every command shares; no torch (the head is in `head`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .._version import __version__
from ..errors import ConfigError
from .labels import Labels

HEAD_MODES = ("replace", "append")


@dataclass(frozen=True)
class HeadInfo:
    """What a head file says about itself: its classes, the backbone and windows it was trained on."""

    classes: tuple[str, ...]
    backbone: str  # registry name of the embedding model
    backbone_sha256: str | None  # of the backbone's weights file (None: not known)
    window_s: float
    hop_s: float
    embedding_dim: int
    hidden: int = 0  # 0: a linear head; else one hidden layer of this width
    thresholds: tuple[float, ...] = ()  # per class, chosen on validation
    streamtag_version: str = __version__
    sha256: str = ""  # of the file it was read from ("" before saving)
    path: str = ""

    @property
    def name(self) -> str:
        return Path(self.path).stem if self.path else "head"

    def labels(self, base: Labels | None = None, mode: str = "replace") -> Labels:
        """The output labels with this head: its classes, or (append) the base model's then its own."""
        check_head_mode(mode)
        own = Labels(tuple(self.classes), tuple(self.classes))
        if mode == "replace":
            return own
        if base is None:
            raise ConfigError("head mode 'append' needs the backbone's labels")
        return Labels(base.mids + own.mids, base.names + own.names)


def head_windows(head: HeadInfo | None, window: float | None, hop: float | None,
                 defaults: tuple[float, float]) -> tuple[float, float]:
    """Window and hop (s) as given, else the head's, else `defaults`."""
    base = (head.window_s, head.hop_s) if head is not None else defaults
    return (base[0] if window is None else window), (base[1] if hop is None else hop)


def check_head_mode(mode: str) -> None:
    if mode not in HEAD_MODES:
        raise ConfigError(f"unknown head mode {mode!r} (use {' or '.join(HEAD_MODES)})")
