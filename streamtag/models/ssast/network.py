"""SSAST (Gong et al., AAAI 2022): the ViT of YuanGongND/ssast run as in its fine-tuning stage.

Front-end: the recipe's evaluation fbank (`KaldiFbank`: each window's own waveform mean removed,
128 bins, 25/10 ms, AudioSet mean/std), no pad or cut: [B, N] -> [B, T, 128]. The fbank
(frequency as height) is cut into (fshape x tshape) patches with the fine-tuning strides of
the recipe (patch models 10 x 10, frame models 128 x 1), flattened frequency-major, preceded
by the cls and dist tokens, plus positional embeddings, then pre-norm blocks and a final norm.

Input length. A self-supervised release runs on the window's own fbank frame count: its
pretraining positional grid is adapted (centre cut or bilinear resize, the reference's
hard-coded 8 rows included) to each input grid, lazily, and cached. A fine-tuned state stores
a positional grid already adapted to its input length (1024 frames in the AudioSet recipe):
the network then zero-pads (in the log-mel domain) or cuts every input to that length, as
the recipe's data loader does.

Outputs: logits [B, 527] (CSV order) from the fine-tuned `mlp_head`, else None; the embedding
is the `mlp_head` input: the mean over patch tokens (`ft_avgtok`, default) or, after
`model.network.pooling = "cls"`, the mean of the cls and dist tokens (`ft_cls`). Frames are the
time columns of the token grid (the mean over its frequency rows): column t starts at fbank
frame t * tstride, i.e. at t * tstride * 10 ms (patch: 100 ms apart, frame: 10 ms). Only
columns whose patch lies inside the input's real frames are returned (a fine-tuned model's
padding columns are dropped).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import WeightsError
from ..frontends import KaldiFbank
from ..labels import Labels
from ..model import Network
from ..spec import ModelSpec
from ..vit import Block
from ..weights import load_into, state_dict_of
from . import RECIPE_STRIDES, SIZES

if TYPE_CHECKING:
    from . import SSASTRelease

HARDCODED_ROWS = 8  # the reference resizes the time axis to (8, t_dim) whatever the pretraining rows
LN_EPS, HEAD_LN_EPS = 1e-6, 1e-5
# keys the fine-tuning stage never uses: timm's ImageNet heads and the pretext-task parts
IGNORED_KEYS = re.compile(r"^(v\.head(_dist)?\.|cpredlayer\.|gpredlayer\.|mask_embed$|p_input_[ft]dim$)")


@dataclass(frozen=True)
class SSASTConfig:
    """Architecture of one SSAST network, as read from a checkpoint or the release table."""

    dim: int
    depth: int
    heads: int
    mlp_hidden: int
    patch_shape: tuple[int, int]  # (fshape, tshape)
    strides: tuple[int, int]  # fine-tuning (fstride, tstride)
    pos_grid: tuple[int, int]  # (rows, columns) of the stored positional embedding
    cls_tokens: int = 2
    n_mels: int = 128
    input_tdim: int | None = None  # fixed input length (fine-tuned states); None: any length
    num_classes: int = 0  # 0: no mlp_head


def patch_kind(patch_shape: tuple[int, int], n_mels: int) -> str:
    """'frame' for full-height patches (128 x 2), else 'patch'."""
    return "frame" if patch_shape[0] == n_mels else "patch"


class ConvPatchEmbed(nn.Module):
    """Conv2d(1, D, patch shape, fine-tuning strides) over the fbank image [B, 1, F, T]."""

    def __init__(self, dim: int, patch_shape: tuple[int, int], strides: tuple[int, int]) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=patch_shape, stride=strides)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


def adapt_pos_grid(grid: Tensor, f_dim: int, t_dim: int) -> Tensor:
    """Adapt a positional grid [1, D, pf, pt] to (f_dim, t_dim) as the reference's fine-tuning stage does.

    Time: centre cut when narrower, else bilinear resize to (8, t_dim) (the reference's fixed 8).
    Frequency: centre cut when fewer rows than pf (never reached with 128 mels and the recipe
    strides; the reference's slice there is buggy, this cuts f_dim rows), else bilinear resize.
    """
    pf, pt = grid.shape[2:]
    if t_dim < pt:
        start = pt // 2 - t_dim // 2
        grid = grid[:, :, :, start:start + t_dim]
    else:
        grid = F.interpolate(grid, size=(HARDCODED_ROWS, t_dim), mode="bilinear")
    if f_dim < pf:
        start = pf // 2 - f_dim // 2
        grid = grid[:, :, start:start + f_dim, :]
    else:
        grid = F.interpolate(grid, size=(f_dim, t_dim), mode="bilinear")
    return grid


class SSASTEncoder(nn.Module):
    """The reference's `v`: patch embedding, cls/dist tokens, positions, blocks, final norm -> tokens."""

    def __init__(self, cfg: SSASTConfig) -> None:
        super().__init__()
        self.cls_tokens = cfg.cls_tokens
        self.pos_grid = cfg.pos_grid
        self.adapts_positions = cfg.input_tdim is None
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        if cfg.cls_tokens == 2:
            self.dist_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.cls_tokens + cfg.pos_grid[0] * cfg.pos_grid[1], cfg.dim))
        self.patch_embed = ConvPatchEmbed(cfg.dim, cfg.patch_shape, cfg.strides)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_hidden, LN_EPS) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim, eps=LN_EPS)
        self._positions: dict[tuple, Tensor] = {}  # adapted pos_embed per input grid

    def positions(self, f_dim: int, t_dim: int) -> Tensor:
        """Positional embeddings [1, cls + f_dim * t_dim, D] for an (f_dim, t_dim) token grid."""
        pos = self.pos_embed
        if (f_dim, t_dim) == self.pos_grid:
            return pos
        if not self.adapts_positions:
            raise ValueError(f"this fine-tuned SSAST takes a {self.pos_grid} token grid, got {(f_dim, t_dim)}")
        key = (f_dim, t_dim, pos.device, pos.dtype, pos._version, torch.is_inference_mode_enabled())
        if key not in self._positions:
            with torch.no_grad():
                d, n = pos.shape[-1], self.cls_tokens
                grid = pos[:, n:].transpose(1, 2).reshape(1, d, *self.pos_grid)
                adapted = adapt_pos_grid(grid, f_dim, t_dim).flatten(2).transpose(1, 2)
                self._positions = {k: v for k, v in self._positions.items() if k[2:5] == key[2:5]}
                self._positions[key] = torch.cat([pos[:, :n], adapted], dim=1)
        return self._positions[key]

    def forward(self, fbank: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Normalised fbank [B, T, F] -> (normed tokens [B, cls + f*t, D], (f_dim, t_dim))."""
        x = self.patch_embed(fbank.transpose(1, 2).unsqueeze(1))  # [B, D, f, t]
        f_dim, t_dim = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)  # frequency-major: token f * t_dim + t
        cls = [self.cls_token] + ([self.dist_token] if self.cls_tokens == 2 else [])
        x = torch.cat([c.expand(x.shape[0], -1, -1) for c in cls] + [x], dim=1)
        x = x + self.positions(f_dim, t_dim)
        for block in self.blocks:
            x = block(x)
        return self.norm(x), (f_dim, t_dim)


class SSAST(Network):
    """SSAST network: fbank [B, T, 128] -> (logits [B, 527] | None, embedding [B, D], frames [B, F, D])."""

    has_frames = True

    def __init__(self, cfg: SSASTConfig, pooling: str = "avgtok", pad_value: float = 0.0) -> None:
        super().__init__()
        if pooling not in ("avgtok", "cls"):
            raise ValueError(f"pooling must be 'avgtok' or 'cls', got {pooling!r}")
        self.cfg = cfg
        self.pooling = pooling
        self.pad_value = pad_value  # a normalised zero log-mel row (the recipe's padding)
        self.v = SSASTEncoder(cfg)
        self.mlp_head = (nn.Sequential(nn.LayerNorm(cfg.dim, eps=HEAD_LN_EPS), nn.Linear(cfg.dim, cfg.num_classes))
                         if cfg.num_classes else None)
        self.has_scores = self.mlp_head is not None
        self.embedding_dim = cfg.dim

    def columns(self, n_fbank_frames: int) -> int:
        """Token-grid time columns lying inside n_fbank_frames real frames (the frames returned)."""
        tshape = self.cfg.patch_shape[1]
        t = n_fbank_frames if self.cfg.input_tdim is None else min(n_fbank_frames, self.cfg.input_tdim)
        return max(0, (t - tshape) // self.cfg.strides[1] + 1)

    def frame_starts(self, n_rows: int) -> np.ndarray:
        """Fbank row of each frame embedding: column t starts at frame t * tstride."""
        return np.arange(self.columns(n_rows)) * self.cfg.strides[1]

    def fit_length(self, fbank: Tensor) -> Tensor:
        """Pad (normalised zero log-mel rows) or cut to a fine-tuned state's input length; else unchanged."""
        target = self.cfg.input_tdim
        if target is None or fbank.shape[1] == target:
            return fbank
        if fbank.shape[1] > target:
            return fbank[:, :target]
        return F.pad(fbank, (0, 0, 0, target - fbank.shape[1]), value=self.pad_value)

    def forward(self, fbank: Tensor) -> tuple[Tensor | None, Tensor, Tensor]:
        n_real = fbank.shape[1]
        tokens, (f_dim, t_dim) = self.v(self.fit_length(fbank))
        n = self.cfg.cls_tokens
        patches = tokens[:, n:]
        pooled = patches.mean(dim=1) if self.pooling == "avgtok" else tokens[:, :n].mean(dim=1)
        logits = self.mlp_head(pooled) if self.mlp_head is not None else None
        frames = patches.reshape(patches.shape[0], f_dim, t_dim, -1).mean(dim=1)[:, :self.columns(n_real)]
        return logits, pooled, frames


def _strip_prefix(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop DataParallel's `module.` prefix (accepted with or without it)."""
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def _heads(spec: ModelSpec, dim: int, source: str) -> int:
    """Head count from the release size (not stored); a released width of another size is refused."""
    size = spec.config.size
    for other, (width, _) in SIZES.items():
        if dim == width and other != size:
            raise WeightsError(f"{source}: width {dim} is SSAST-{other.title()}, not the {size} size of {spec.name}")
    heads = SIZES[size][1]
    if dim % heads:
        raise WeightsError(f"{source}: width {dim} is not divisible by the {heads} heads of SSAST-{size.title()}")
    return heads


def _finetuned_grid(state: dict[str, Tensor], strides: tuple[int, int], patch_shape: tuple[int, int],
                    n_mels: int, cls_tokens: int, source: str) -> tuple[tuple[int, int], int, int]:
    """(stored token grid, input length, classes) of a fine-tuned state: solved from its pos_embed length."""
    classes = int(state["mlp_head.1.weight"].shape[0])
    if classes != 527:
        raise WeightsError(f"{source}: its head has {classes} classes; only AudioSet 527-class heads "
                           f"(label CSV order) are supported")
    positions = state["v.pos_embed"].shape[1] - cls_tokens
    f_dim = (n_mels - patch_shape[0]) // strides[0] + 1
    if positions % f_dim:
        raise WeightsError(f"{source}: pos_embed length {positions + cls_tokens} does not fit {f_dim} frequency "
                           f"rows (fine-tuning strides {strides})")
    t_dim = positions // f_dim
    # the shortest input giving that grid (recipe: 1024; the conv never reads frames past 1016)
    return (f_dim, t_dim), (t_dim - 1) * strides[1] + patch_shape[1], classes


def _pretrain_grid(state: dict[str, Tensor], patch_shape: tuple[int, int], cls_tokens: int,
                   source: str) -> tuple[int, int]:
    """Token grid of a self-supervised state: its pretraining input cut with strides = patch shape."""
    if "p_input_fdim" not in state or "p_input_tdim" not in state:
        raise WeightsError(f"{source}: neither a fine-tuned mlp_head nor the pretraining p_input_fdim/tdim")
    p_in = (int(state["p_input_fdim"]), int(state["p_input_tdim"]))
    grid = ((p_in[0] - patch_shape[0]) // patch_shape[0] + 1, (p_in[1] - patch_shape[1]) // patch_shape[1] + 1)
    if cls_tokens + grid[0] * grid[1] != state["v.pos_embed"].shape[1]:
        raise WeightsError(f"{source}: pos_embed length {state['v.pos_embed'].shape[1]} does not fit the "
                           f"{grid[0]}x{grid[1]} pretraining grid of a {p_in[0]}x{p_in[1]} input")
    return grid


def config_from_state(state: dict[str, Tensor], spec: ModelSpec, source: str) -> SSASTConfig:
    """Architecture from a (prefix-stripped) self-supervised or fine-tuned state; WeightsError if it is not SSAST."""
    needed = ("v.pos_embed", "v.cls_token", "v.patch_embed.proj.weight", "v.blocks.0.mlp.fc1.weight")
    absent = [k for k in needed if k not in state]
    if absent:
        raise WeightsError(f"{source}: not an SSAST checkpoint for {spec.name} (no {', '.join(absent)})")
    release: SSASTRelease = spec.config
    n_mels = release.n_mels
    dim = int(state["v.pos_embed"].shape[-1])
    patch_shape = tuple(int(s) for s in state["v.patch_embed.proj.weight"].shape[2:])
    kind = patch_kind(patch_shape, n_mels)
    if kind != release.patch:
        raise WeightsError(f"{source}: a {kind} model ({patch_shape[0]}x{patch_shape[1]} patches), "
                           f"but {spec.name} is a {release.patch} model")
    strides = release.strides or RECIPE_STRIDES[kind]
    cls_tokens = 2 if "v.dist_token" in state else 1
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"v\.blocks\.(\d+)\.", k)))
    if "mlp_head.1.weight" in state:  # fine-tuned: positions already adapted to its fixed input grid
        grid, input_tdim, classes = _finetuned_grid(state, strides, patch_shape, n_mels, cls_tokens, source)
    else:
        grid, input_tdim, classes = _pretrain_grid(state, patch_shape, cls_tokens, source), None, 0
    return SSASTConfig(dim=dim, depth=depth, heads=_heads(spec, dim, source),
                       mlp_hidden=int(state["v.blocks.0.mlp.fc1.weight"].shape[0]), patch_shape=patch_shape,
                       strides=strides, pos_grid=grid, cls_tokens=cls_tokens, n_mels=n_mels,
                       input_tdim=input_tdim, num_classes=classes)


def build(spec: ModelSpec, checkpoint: object | None, source: str, labels: Labels) -> tuple[KaldiFbank, SSAST]:
    """(front-end, network) for an SSAST release or fine-tuned state; random weights when checkpoint is None."""
    release: SSASTRelease = spec.config
    frontend = release.frontend()
    pad_value = float((torch.zeros(()) - frontend.mean) / (2 * frontend.std))  # as the front-end rounds it
    if checkpoint is None:
        network = SSAST(release.architecture(), pooling=release.pooling, pad_value=pad_value)
        for p in (network.v.cls_token, network.v.dist_token, network.v.pos_embed):
            nn.init.trunc_normal_(p, std=0.02)
        return frontend, network
    state = _strip_prefix(state_dict_of(checkpoint, source))
    network = SSAST(config_from_state(state, spec, source), pooling=release.pooling, pad_value=pad_value)
    load_into(network, {k: v for k, v in state.items() if not IGNORED_KEYS.match(k)}, source, spec.name)
    return frontend, network
