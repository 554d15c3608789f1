"""Your own classes on a frozen backbone: a small classifier head over window embeddings, its safe file
format, and the model that runs backbone + head."""
from __future__ import annotations

import dataclasses
import functools
import os
import pickle

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError, WeightsError
from .head_info import HEAD_MODES, HeadInfo, check_head_mode, head_windows
from .mel import FrameCache
from .model import ModelOutput, TaggingModel
from .pending import PendingNetwork
from .weights import sha256_file, weights_sha256

HEAD_FORMAT = "streamtag-head/1"


class Head(nn.Module):
    """Standardised embedding -> logits, linear or with one hidden layer."""

    def __init__(self, info: HeadInfo) -> None:
        super().__init__()
        self.info = info
        d, c = info.embedding_dim, len(info.classes)
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("std", torch.ones(d))
        self.layers = (nn.Linear(d, c) if not info.hidden else
                       nn.Sequential(nn.Linear(d, info.hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(info.hidden, c)))

    def forward(self, embedding: Tensor) -> Tensor:
        return self.layers((embedding - self.mean) / self.std)


def head_payload(head: Head) -> dict:
    """What a head file holds: plain tensors and values only, so it loads with weights_only=True."""
    info = head.info
    described = {k: v for k, v in dataclasses.asdict(info).items() if k not in ("sha256", "path")}
    return {"format": HEAD_FORMAT, **described, "classes": list(info.classes),
            "thresholds": [float(t) for t in info.thresholds],
            "state": {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}}


FIELDS = {"classes": list, "backbone": str, "window_s": float, "hop_s": float, "embedding_dim": int, "hidden": int,
          "thresholds": list, "streamtag_version": str, "state": dict}


def load_head(path: str | os.PathLike) -> Head:
    """A head file, checked: plain data only (a file carrying pickled code is refused), every field present."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"head file not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(f"{path}: refused: the head file carries pickled code, which could run on loading "
                           "(a streamtag head holds tensors and plain values only)") from None
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a file that is not a checkpoint
        raise WeightsError(f"{path}: not a readable streamtag head ({type(e).__name__})") from None
    if not isinstance(raw, dict) or raw.get("format") != HEAD_FORMAT:
        raise WeightsError(f"{path}: not a streamtag head file (no '{HEAD_FORMAT}' format tag)")
    for key, kind in FIELDS.items():
        value = raw.get(key)
        if not isinstance(value, kind) and not (kind is float and isinstance(value, int)):
            raise WeightsError(f"{path}: the head's {key!r} is missing or not a {kind.__name__}")
    classes = tuple(str(c) for c in raw["classes"])
    if not classes or len(set(classes)) != len(classes):
        raise WeightsError(f"{path}: the head needs distinct class names, got {list(classes)}")
    info = HeadInfo(classes=classes, backbone=raw["backbone"], backbone_sha256=raw.get("backbone_sha256"),
                    window_s=float(raw["window_s"]), hop_s=float(raw["hop_s"]),
                    embedding_dim=int(raw["embedding_dim"]), hidden=int(raw["hidden"]),
                    thresholds=tuple(float(t) for t in raw["thresholds"]),
                    streamtag_version=raw["streamtag_version"], sha256=sha256_file(path), path=path)
    if info.thresholds and len(info.thresholds) != len(classes):
        raise WeightsError(f"{path}: {len(info.thresholds)} thresholds for {len(classes)} classes")
    head = Head(info)
    try:
        head.load_state_dict(raw["state"])
    except RuntimeError as e:
        raise WeightsError(f"{path}: the head's weights do not fit its description ({str(e).splitlines()[0]})") \
            from None
    return head.eval()


def read_head_info(path: str | os.PathLike) -> HeadInfo:
    """What a head file says about itself (read once per file version)."""
    path = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(path)
    except OSError:
        raise ConfigError(f"head file not found: {path}") from None
    return _head_info(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _head_info(path: str, mtime_ns: int, size: int) -> HeadInfo:
    return load_head(path).info


def backbone_sha256(model: TaggingModel) -> str | None:
    """The sha256 of the backbone's weights file (the published one when the registry knows it)."""
    if model.weights is None:
        return None
    return weights_sha256(model.spec, model.weights)


def check_backbone(head: HeadInfo, model: TaggingModel, window_s: float | None = None) -> None:
    """ConfigError naming the first mismatch between a head and the backbone (and window) it is used with."""
    where = head.path or "the head"
    if model.spec.name != head.backbone:
        raise ConfigError(f"{where} was trained on {head.backbone} embeddings, not {model.spec.name}: "
                          f"use --model {head.backbone}")
    if model.spec.embedding_dim != head.embedding_dim:
        raise ConfigError(f"{where} expects {head.embedding_dim}-d embeddings; {model.spec.name} gives "
                          f"{model.spec.embedding_dim}-d")
    actual = backbone_sha256(model)
    if head.backbone_sha256 and actual and actual != head.backbone_sha256:
        raise ConfigError(f"{where} was trained on other {head.backbone} weights (sha256 {head.backbone_sha256[:12]}…, "
                          f"these are {actual[:12]}…)")
    if window_s is not None and abs(window_s - head.window_s) > 1e-9:
        raise ConfigError(f"{where} was trained on {head.window_s:g} s windows; tag with --window {head.window_s:g}")


class HeadedModel(TaggingModel):
    """A backbone with a head on its embeddings: the head's logits replace (or follow) the backbone's."""

    def __init__(self, base: TaggingModel, head: Head, mode: str = "replace") -> None:
        super().__init__()
        check_head_mode(mode)
        if mode == "append" and not base.has_scores:
            raise ConfigError(f"{base.spec.name} gives no scores to append the head's to: use head mode replace")
        self.base, self.head, self.mode = base, head, mode
        extra = base.spec.num_classes if mode == "append" else 0
        self.spec = dataclasses.replace(base.spec, name=f"{base.spec.name}+{head.info.name}",
                                        num_classes=extra + len(head.info.classes), mAP=None)
        self.weights = base.weights

    @property
    def has_scores(self) -> bool:
        return True

    @property
    def has_frames(self) -> bool:
        return self.base.has_frames

    @property
    def exportable(self) -> bool:
        return self.base.exportable

    def frame_times(self, n_samples: int) -> np.ndarray | None:
        return self.base.frame_times(n_samples)

    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> ModelOutput:
        return self._with_head(self.base(wave, lengths))

    def prepare_windows(self, span: Tensor, count: int, step: int, window: int, start: int | None = None,
                        cache: FrameCache | None = None) -> PendingNetwork:
        return PendingNetwork(self._run_base, self.base.prepare_windows(span, count, step, window, start, cache))

    def _run_base(self, pending: PendingNetwork) -> ModelOutput:
        return self._with_head(pending.run())

    def optimized_for(self, example: Tensor, runtime: str = "torch") -> "HeadedModel":
        base = self.base.optimized_for(example, runtime)
        return self if base is self.base else HeadedModel(base, self.head, self.mode).eval()

    def _with_head(self, out: ModelOutput) -> ModelOutput:
        logits = self.head(out.embedding.float())
        if self.mode == "append":
            logits = torch.cat([out.logits.float(), logits], dim=1)
        return ModelOutput(logits, out.embedding, out.frames)


def attach_head(model: TaggingModel, head: str | os.PathLike | Head, mode: str = "replace",
                window_s: float | None = None) -> HeadedModel:
    """`model` with `head` (a file or a loaded head), after checking they belong together."""
    head = head if isinstance(head, Head) else load_head(head)
    check_backbone(head.info, model, window_s)
    return HeadedModel(model, head, mode).eval()


__all__ = ["HEAD_MODES", "Head", "HeadInfo", "HeadedModel", "attach_head", "backbone_sha256", "check_backbone",
           "head_payload", "head_windows", "load_head", "read_head_info"]
