"""EAT (Efficient Audio Transformer, cwx-worst-one/EAT): fairseq checkpoints, Kaldi fbank front-end, post-LN ViT.

Loads the official fairseq files as they are (`cfg` + `model`): pre-trained `data2vec_multi` files
(the student's top-level keys; the EMA teacher `_ema` and the CNN decoder are ignored) and fine-tuned
`mae_image_classification` files (`model.`-prefixed encoder + `fc_norm` + 527-way `head`, whose rows are
permuted from `task_state['labels']` order into the AudioSet label-CSV order). Sizes come from the
checkpoint's `cfg` and tensors, so any EAT registry name loads either kind of file.

Front-end (`EATRelease.frontend()`, a `KaldiFbank`): waveform-mean removal, Kaldi fbank (128 bins, 'hanning',
htk_compat), zero log rows appended or rows cut to T, then (x + 4.268) / (2 * 4.569). T: `target_length=None`
(the default for streaming windows) rounds the window's fbank frame count up to a multiple of 16, as the EAT
feature-extraction readme suggests; `spec.with_config(target_length=1024)` reproduces the official scripts.

Outputs: the embedding is the CLS token of the encoder (the "utterance" feature). Encoder tokens come
time-major, 8 frequency patches per 16-frame (160 ms) step; a frame is one such step: the mean of its
8 frequency tokens, so frames are [B, T/16, D] at 6.25 Hz and frame k starts at k * 0.16 s (fbank
frame 16k starts at sample 16k * 160). Fine-tuned files give logits = head(fc_norm(CLS)).
As in the official code there is no padding mask: padded rows take part in attention. Inputs longer
than the checkpoint's position table (rows / 8 * 16 frames: 122.88 s for 6144 rows, 10.24 s for the
older 512-row files) raise ConfigError.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from ...errors import ConfigError, WeightsError
from ..frontends import KaldiFbank
from ..labels import Labels
from ..model import Network
from ..spec import ModelSpec
from ..vit import Block
from ..weights import load_into
from . import PATCH

if TYPE_CHECKING:
    from . import EATRelease

IMAGE = "modality_encoders.IMAGE."
# modules that exist only for pre-training (student side); `_ema` is the teacher's nested state
PRETRAINING_ONLY = (IMAGE + "decoder.", "shared_decoder.", "recon_proj.", "cls_proj.", "center")


@dataclass(frozen=True)
class EATEncoderConfig:
    """Shape of an EAT encoder (post-LN ViT over 16x16 fbank patches)."""

    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-6
    position_rows: int = 768 * 8  # rows of the fixed sin-cos table (max_length time rows x 8)
    num_extra_tokens: int = 1
    in_chans: int = 1
    patch_size: int = PATCH


def sincos_positions(embed_dim: int, rows: int, freq_patches: int = 8) -> Tensor:
    """EAT's fixed 2-D sin-cos table [1, rows, D]: row t*8+f; first half encodes f, second half t."""
    quarter = embed_dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    row = torch.arange(rows)

    def encode(pos: Tensor) -> Tensor:
        angle = pos.double()[:, None] * omega[None]
        return torch.cat([angle.sin(), angle.cos()], dim=1)

    table = torch.cat([encode(row % freq_patches), encode(row // freq_patches)], dim=1)
    return table.float().unsqueeze(0)


class LocalEncoder(nn.Module):
    """16x16 stride-16 patch convolution (`local_encoder.proj`)."""

    def __init__(self, cfg: EATEncoderConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size)


class FixedPositions(nn.Module):
    """The fixed sin-cos position table (`fixed_positional_encoder.positions`), [1, rows, D]."""

    def __init__(self, cfg: EATEncoderConfig) -> None:
        super().__init__()
        self.positions = nn.Parameter(sincos_positions(cfg.embed_dim, cfg.position_rows), requires_grad=False)


class ContextEncoder(nn.Module):
    """LayerNorm over all tokens before the blocks (`context_encoder.norm`; EAT has no prenet blocks)."""

    def __init__(self, cfg: EATEncoderConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)


class PatchEncoder(nn.Module):
    """`modality_encoders.IMAGE`: fbank [B, T, M] -> normalised tokens [B, extra + P, D], P = (T/16)(M/16)."""

    def __init__(self, cfg: EATEncoderConfig) -> None:
        super().__init__()
        self.extra_tokens = nn.Parameter(torch.randn(1, cfg.num_extra_tokens, cfg.embed_dim))
        self.local_encoder = LocalEncoder(cfg)
        self.fixed_positional_encoder = FixedPositions(cfg)
        self.context_encoder = ContextEncoder(cfg)

    def forward(self, fbank: Tensor) -> Tensor:
        x = self.local_encoder.proj(fbank.unsqueeze(1))  # [B, D, T/16, M/16]
        freq = x.shape[-1]
        x = x.flatten(2).transpose(1, 2)  # time-major: token t*(M/16) + f
        positions = self.fixed_positional_encoder.positions
        if x.shape[1] > positions.shape[1]:
            raise ConfigError(f"EAT input of {fbank.shape[1]} fbank frames is too long for this checkpoint's "
                              f"{positions.shape[1]}-row position table (at most "
                              f"{positions.shape[1] // freq * self.local_encoder.proj.stride[0]} frames)")
        x = x + positions[:, :x.shape[1]].to(x.dtype)
        x = torch.cat([self.extra_tokens.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
        return self.context_encoder.norm(x)


class EATEncoder(nn.Module):
    """The EAT student encoder (`Data2VecMultiModel.extract_features`): fbank [B, T, M] -> tokens [B, 1 + P, D]."""

    def __init__(self, cfg: EATEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.modality_encoders = nn.ModuleDict({"IMAGE": PatchEncoder(cfg)})
        hidden = int(cfg.embed_dim * cfg.mlp_ratio)
        self.blocks = nn.ModuleList([Block(cfg.embed_dim, cfg.num_heads, hidden, cfg.norm_eps, pre_norm=False)
                                     for _ in range(cfg.depth)])

    def forward(self, fbank: Tensor) -> Tensor:
        x = self.modality_encoders["IMAGE"](fbank)
        for block in self.blocks:
            x = block(x)
        return x


class EATNetwork(Network):
    """Fbank [B, T, M] -> (logits [B, classes] | None, CLS embedding [B, D], frames [B, T/16, D])."""

    has_frames = True

    def __init__(self, cfg: EATEncoderConfig, num_classes: int) -> None:
        super().__init__()
        self.model = EATEncoder(cfg)
        self.fc_norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6) if num_classes else None
        self.head = nn.Linear(cfg.embed_dim, num_classes) if num_classes else None
        self.has_scores = self.head is not None

    def tokens(self, features: Tensor) -> Tensor:
        """Encoder output of every token, [B, extra + P, D] (the official `extract_features(...)['x']`)."""
        return self.model(features[:, 0] if features.dim() == 4 else features)

    def forward(self, features: Tensor) -> tuple[Tensor | None, Tensor, Tensor]:
        x = self.tokens(features)
        cls = x[:, 0]
        patches = x[:, self.model.cfg.num_extra_tokens:]
        b, p, d = patches.shape
        freq = features.shape[-1] // self.model.cfg.patch_size
        frames = patches.reshape(b, p // freq, freq, d).mean(dim=2)
        logits = None if self.head is None else self.head(self.fc_norm(cls))
        return logits, cls, frames

    def frame_starts(self, n_rows: int) -> np.ndarray:
        """Fbank row of each 16-row (160 ms) token step."""
        patch = self.model.cfg.patch_size
        return np.arange(n_rows // patch) * patch


def _config_section(cfg: object, path: str, source: str, where: str = "cfg") -> dict:
    """The dict at `path` (dotted) inside a checkpoint's plain-dict config, else WeightsError."""
    node = cfg
    for key in path.split("."):
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            raise WeightsError(f"{source}: not an EAT fairseq checkpoint (no {where}.{path} section)")
        node = node[key]
    return node


def encoder_config(model_cfg: dict, state: dict[str, Tensor], source: str) -> EATEncoderConfig:
    """The encoder shape from a `data2vec_multi` model config and the tensors themselves."""
    image = _config_section(model_cfg, "modalities.image", source, where="cfg.model")
    for key, expected in (("layer_norm_first", False), ("use_alibi_encoder", False)):
        value = model_cfg.get(key, image.get(key, expected))
        if value != expected:
            raise WeightsError(f"{source}: EAT with {key}={value} is not supported")
    if image.get("prenet_depth", 0):
        raise WeightsError(f"{source}: EAT with prenet_depth={image['prenet_depth']} is not supported")
    extra = state.get(IMAGE + "extra_tokens")
    positions = state.get(IMAGE + "fixed_positional_encoder.positions")
    if extra is None or positions is None or positions.dim() != 3:
        raise WeightsError(f"{source}: not an EAT checkpoint (no {IMAGE}extra_tokens / positions table)")
    try:
        return EATEncoderConfig(embed_dim=int(model_cfg["embed_dim"]), depth=int(model_cfg["depth"]),
                             num_heads=int(model_cfg["num_heads"]), mlp_ratio=float(model_cfg.get("mlp_ratio", 4.0)),
                             norm_eps=float(model_cfg.get("norm_eps") or 1e-6), position_rows=positions.shape[1],
                             num_extra_tokens=extra.shape[1], in_chans=int(image.get("in_chans", 1)),
                             patch_size=int(image.get("patch_size", PATCH)))
    except (KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"{source}: EAT model config lacks or mangles {e}") from None


def _without_pretraining_modules(state: dict, prefix: str = "") -> dict[str, Tensor]:
    drop = tuple(prefix + k for k in PRETRAINING_ONLY)
    return {k: v for k, v in state.items() if k != prefix + "_ema" and not k.startswith(drop)}


def head_permutation(task_state: object, source: str, labels: Labels) -> list[int]:
    """Head row of each AudioSet label-CSV class, from the checkpoint's `task_state['labels']` {mid: index}."""
    order = task_state.get("labels") if isinstance(task_state, dict) else None
    if not isinstance(order, dict):
        raise WeightsError(f"{source}: fine-tuned EAT checkpoint without task_state['labels'] (its class order)")
    index = {str(mid).strip(): int(i) for mid, i in order.items()}
    csv_mids = labels.mids
    missing = [m for m in csv_mids if m not in index]
    if missing or len(index) != len(csv_mids):
        raise WeightsError(f"{source}: its {len(index)} task_state labels are not the {len(csv_mids)} AudioSet "
                           f"classes (e.g. missing {', '.join(missing[:3]) or 'none'})")
    return [index[m] for m in csv_mids]


def parse_checkpoint(checkpoint: object, source: str, labels: Labels) -> tuple[EATEncoderConfig, int, dict[str, Tensor]]:
    """(encoder shape, classes, network state dict with `model.` encoder keys) of a fairseq EAT file."""
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise WeightsError(f"{source}: not an EAT fairseq checkpoint (needs 'cfg' and 'model' entries)")
    model_cfg = _config_section(checkpoint.get("cfg"), "model", source)
    state = checkpoint["model"]
    name = model_cfg.get("_name")
    if name == "data2vec_multi":
        student = _without_pretraining_modules(state)
        return encoder_config(model_cfg, student, source), 0, {"model." + k: v for k, v in student.items()}
    if name == "mae_image_classification":
        encoder_cfg = _config_section(model_cfg, "pretrained_model_args.model", source, where="cfg.model")
        if model_cfg.get("prediction_mode", "CLS_TOKEN") != "CLS_TOKEN" or not model_cfg.get("use_fc_norm", True):
            raise WeightsError(f"{source}: only CLS_TOKEN prediction with fc_norm is supported, got "
                               f"{model_cfg.get('prediction_mode')} / use_fc_norm={model_cfg.get('use_fc_norm')}")
        state = _without_pretraining_modules(state, "model.")
        encoder = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
        head_w, head_b = state.get("head.weight"), state.get("head.bias")
        if head_w is None or head_b is None:
            raise WeightsError(f"{source}: fine-tuned EAT checkpoint without head.weight / head.bias")
        order = torch.tensor(head_permutation(checkpoint.get("task_state"), source, labels))
        state = {**state, "head.weight": head_w[order], "head.bias": head_b[order]}
        return encoder_config(encoder_cfg, encoder, source), head_w.shape[0], state
    raise WeightsError(f"{source}: not an EAT checkpoint (cfg.model._name is {name!r}, expected "
                       f"'data2vec_multi' or 'mae_image_classification')")


def build(spec: ModelSpec, checkpoint: object | None, source: str, labels: Labels) -> tuple[KaldiFbank, EATNetwork]:
    """(fbank front-end, EATNetwork) from a fairseq EAT checkpoint, or the released architecture with random weights."""
    release: EATRelease = spec.config
    if checkpoint is None:
        cfg, classes, state = release.architecture(), spec.num_classes, None
    else:
        cfg, classes, state = parse_checkpoint(checkpoint, source, labels)
    network = EATNetwork(cfg, classes)
    if state is not None:
        load_into(network, state, source, spec.name)
    return release.frontend(cfg.patch_size), network
