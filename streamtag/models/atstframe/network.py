"""ATST-Frame (Audio-WestlakeU/audiossl `methods/atstframe`): the teacher `FrameAST` encoder and its mel front-end.

Loads the official PyTorch Lightning checkpoints (`model.teacher.encoder.*` of `state_dict`);
the depth is counted from the `blocks.N` keys, widths come from the tensor shapes and the
head count from `hyper_parameters["arch"]`. Embedding-only: logits are None.

Outputs, as the reference's `get_scene_embedding` / `get_timestamp_embedding`:
- The mel of the whole input is cut into consecutive 1001-frame chunks (10.01 s), each encoded
  on its own (positions restart, attention stays inside the chunk). A chunk of n mel frames
  gives n // 4 tokens (one per 40 ms; 1-3 trailing frames are dropped).
- `embedding` (scene): per chunk, the token mean of `norm_frame(x)` after each of the last
  min(12, depth) blocks, concatenated; then the plain mean over chunks (a trailing chunk of
  1-3 frames has no tokens and adds a zero vector, as the reference). Independent of `n_blocks`.
- `frames` (timestamp embeddings): the chunks' token sequences concatenated in time, each token
  the concatenation of `norm_frame(x)` after the last min(n_blocks, depth) blocks.
- `frame_times(n)`: token k starts at k * 40 ms, as the reference's timestamps. Like them, this
  ignores the mel frame dropped at the end of every full chunk (1001 frames give 250 tokens), so
  in chunk c the times run c * 10 ms ahead of the audio the token actually covers (the token
  covers mel frames c*1001 + 4j .. +3, i.e. it starts at (c*1001 + 4j) * 10 ms). Within the first
  10.01 s of a window (the usual 10 s window) the times are exact.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from ...errors import WeightsError
from ..frontends import ATSTMel
from ..labels import Labels
from ..model import Network
from ..spec import ModelSpec
from ..vit import Block
from ..weights import load_into, state_dict_of
from . import DEFAULT_N_BLOCKS

if TYPE_CHECKING:
    from . import ATSTRelease

TEACHER_PREFIX = "model.teacher.encoder."
CHUNK_FRAMES = 1001  # mel frames per encoded chunk: 10 s, as the reference's embedding API
SCENE_BLOCKS = 12  # the reference's get_scene_embedding always averages the last 12 blocks
LAYER_NORM_EPS = 1e-6
HEAD_DIM = 64
HEADS_BY_ARCH = {"small": 6, "base": 12}  # hyper_parameters["arch"] -> attention heads


@dataclass(frozen=True)
class FrameASTConfig:
    """Shape of a `FrameAST` encoder."""

    embed_dim: int
    depth: int
    num_heads: int
    mlp_dim: int
    patch_h: int = 64  # mel bins per patch (all of them: one token per time step)
    patch_w: int = 4  # mel frames per patch: 40 ms
    max_tokens: int = 250  # learned positions (pos_embed holds one more, unused CLS slot)
    n_mels: int = 64


class LinearPatchEmbed(nn.Module):
    """Cuts [B, C, H, W] into patch_h x patch_w patches, time-major tokens, mel-major vectors; projects them."""

    def __init__(self, patch_h: int, patch_w: int, embed_dim: int, in_chans: int = 1) -> None:
        super().__init__()
        self.patch_h = patch_h
        self.patch_w = patch_w
        self.patch_embed = nn.Linear(patch_h * patch_w * in_chans, embed_dim)

    def forward(self, mel: Tensor) -> Tensor:
        b, c, height, width = mel.shape
        h, w = height // self.patch_h, width // self.patch_w
        patches = mel[:, :, :h * self.patch_h, :w * self.patch_w].reshape(b, c, h, self.patch_h, w, self.patch_w)
        # (b c (h p1) (w p2)) -> (b (w h) (p1 p2 c))
        patches = patches.permute(0, 4, 2, 3, 5, 1).reshape(b, w * h, self.patch_h * self.patch_w * c)
        return self.patch_embed(patches)


class FrameASTEncoder(nn.Module):
    """The teacher `FrameAST` (pos_type "cut", Linear patch embedding, no CLS token, no prompts)."""

    def __init__(self, config: FrameASTConfig) -> None:
        super().__init__()
        d = config.embed_dim
        self.config = config
        self.mask_embed = nn.Parameter(torch.zeros(1, 1, d))  # training only; kept so checkpoints load strictly
        self.pos_embed = nn.Parameter(torch.zeros(1, config.max_tokens + 1, d))
        self.patch_embed = LinearPatchEmbed(config.patch_h, config.patch_w, d)
        self.blocks = nn.ModuleList(Block(d, config.num_heads, config.mlp_dim, LAYER_NORM_EPS, qkv_bias=False) for _ in range(config.depth))
        self.norm_frame = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def block_outputs(self, mel: Tensor, n: int) -> list[Tensor]:
        """norm_frame(x) [B, tokens, D] after each of the last n blocks of one chunk, in block order."""
        x = self.patch_embed(mel)
        tokens = x.shape[1]
        if tokens > self.config.max_tokens:
            raise ValueError(f"{tokens} tokens in one chunk; the encoder has {self.config.max_tokens} positions")
        first = len(self.blocks) - n
        if tokens == 0:  # a chunk of 1-3 mel frames: nothing to attend to
            return [x] * n
        x = x + self.pos_embed[:, 1:tokens + 1]
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= first:
                outputs.append(self.norm_frame(x))
        return outputs


class ATSTFrame(Network):
    """Mel [B, 1, n_mels, T] -> (None, scene [B, min(12, depth)*D], timestamp frames [B, F, min(n_blocks, depth)*D]).

    The scene embedding always uses the last min(12, depth) blocks, as the reference; `n_blocks` sets the frames'.
    """

    has_scores = False  # self-supervised: embeddings only
    has_frames = True

    def __init__(self, config: FrameASTConfig, n_blocks: int = DEFAULT_N_BLOCKS,
                 chunk_frames: int = CHUNK_FRAMES) -> None:
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be at least 1, got {n_blocks}")
        self.encoder = FrameASTEncoder(config)
        self.n_blocks = n_blocks
        self.chunk_frames = chunk_frames

    @property
    def scene_blocks(self) -> int:
        return min(SCENE_BLOCKS, self.encoder.config.depth)

    @property
    def frame_blocks(self) -> int:
        return min(self.n_blocks, self.encoder.config.depth)

    def forward(self, mel: Tensor) -> tuple[None, Tensor, Tensor]:
        """As the reference, padding is never masked (padded samples are zeros)."""
        keep = max(self.scene_blocks, self.frame_blocks)
        scenes, frames = [], []
        for start in range(0, mel.shape[-1], self.chunk_frames):
            outputs = self.encoder.block_outputs(mel[..., start:start + self.chunk_frames], keep)
            tokens = torch.tensor(outputs[0].shape[1], device=mel.device) + 1e-6  # the reference's divisor
            scenes.append(torch.cat([o.sum(dim=1) for o in outputs[keep - self.scene_blocks:]], dim=-1)
                          / tokens.to(outputs[0].dtype))
            frames.append(torch.cat(outputs[keep - self.frame_blocks:], dim=-1))
        return None, torch.stack(scenes).mean(dim=0), torch.cat(frames, dim=1)

    def frame_starts(self, n_rows: int) -> np.ndarray:
        """Mel row of each frame: k * patch_w, the reference's timestamps (they lag 10 ms per chunk boundary)."""
        width = self.encoder.config.patch_w
        count = sum(min(self.chunk_frames, n_rows - s) // width for s in range(0, n_rows, self.chunk_frames))
        return np.arange(count) * width


def encoder_state(checkpoint: object, source: str) -> tuple[dict[str, Tensor], dict]:
    """(teacher-encoder state dict with the prefix removed, hyper_parameters) of a Lightning checkpoint."""
    state = state_dict_of(checkpoint, source)
    teacher = {k[len(TEACHER_PREFIX):]: v for k, v in state.items() if k.startswith(TEACHER_PREFIX)}
    if not teacher:
        raise WeightsError(f"{source}: no '{TEACHER_PREFIX}*' keys: not an ATST-Frame Lightning checkpoint")
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    return teacher, dict(hparams) if isinstance(hparams, dict) else {}


def config_from_state(state: dict[str, Tensor], hparams: dict, source: str) -> FrameASTConfig:
    """The encoder's shape: widths and depth from the tensors, heads and patch size from the hyper-parameters."""
    needed = ("pos_embed", "patch_embed.patch_embed.weight", "blocks.0.mlp.fc1.weight", "norm_frame.weight")
    missing = [k for k in needed if k not in state]
    if missing:
        raise WeightsError(f"{source}: not an ATST-Frame encoder (missing {TEACHER_PREFIX}{', '.join(missing)})")
    unsupported = {k: hparams[k] for k, ok in (("pos_type", "cut"), ("patch_embed", "Linear"), ("nprompt", 0))
                   if k in hparams and hparams[k] != ok}
    if unsupported:
        raise WeightsError(f"{source}: unsupported ATST-Frame settings {unsupported}")
    embed_dim = state["pos_embed"].shape[-1]
    depth = len({int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))})
    arch = hparams.get("arch")
    num_heads = HEADS_BY_ARCH.get(arch, embed_dim // HEAD_DIM) if isinstance(arch, str) else embed_dim // HEAD_DIM
    patch_h, patch_w = int(hparams.get("patch_h", 64)), int(hparams.get("patch_w", 4))
    n_mels = int(hparams.get("n_mels", 64))
    patch_size = state["patch_embed.patch_embed.weight"].shape[-1]
    if patch_h * patch_w != patch_size or patch_h != n_mels:
        raise WeightsError(f"{source}: patch {patch_h}x{patch_w} over {n_mels} mels does not fit the "
                           f"{patch_size}-value patch embedding (ATST-Frame uses one 64x4 patch per 40 ms)")
    if embed_dim % num_heads:
        raise WeightsError(f"{source}: width {embed_dim} is not divisible by {num_heads} heads")
    return FrameASTConfig(embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                         mlp_dim=state["blocks.0.mlp.fc1.weight"].shape[0], patch_h=patch_h, patch_w=patch_w,
                         max_tokens=state["pos_embed"].shape[1] - 1, n_mels=n_mels)


def network_from_checkpoint(checkpoint: object, source: str, arch_name: str,
                            n_blocks: int = DEFAULT_N_BLOCKS) -> ATSTFrame:
    """An `ATSTFrame` shaped by and loaded (strictly) from the checkpoint's teacher encoder."""
    state, hparams = encoder_state(checkpoint, source)
    network = ATSTFrame(config_from_state(state, hparams, source), n_blocks=n_blocks)
    if network.encoder.config.max_tokens < CHUNK_FRAMES // network.encoder.config.patch_w:
        raise WeightsError(f"{source}: {network.encoder.config.max_tokens} positions are fewer than a "
                           f"{CHUNK_FRAMES}-frame chunk needs")
    load_into(network.encoder, state, source, arch_name)
    return network


def build(spec: ModelSpec, checkpoint: object | None, source: str, labels: Labels) -> tuple[ATSTMel, ATSTFrame]:
    """(front-end, network) of an ATST-Frame release; `checkpoint` None gives the released shape, random."""
    release: ATSTRelease = spec.config
    if checkpoint is None:
        network = ATSTFrame(release.architecture(), n_blocks=release.n_blocks)
    else:
        network = network_from_checkpoint(checkpoint, source, spec.name, release.n_blocks)
    return release.frontend(network.encoder.config.n_mels), network
