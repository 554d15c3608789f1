"""BEATs (Chen et al. 2022, microsoft/unilm `beats`): a patch transformer on a Kaldi fbank, built from its `cfg`.

Front-end (`BEATs.preprocess`): each row x 2**15, Kaldi fbank (povey window, 25 ms / 10 ms, 128 bins,
no waveform mean removal), then (fbank - 15.41663) / (2 * 6.55582). The network cuts the fbank into
16x16 patches (time-major tokens t * 8 + f), then runs the post-LN deep-norm encoder with the gated,
bucketed relative-position bias. Every architecture setting is read from the checkpoint's `cfg`
(layers, widths, heads, patch size, conv_pos, layer_norm_first, deep_norm, relative position, gru_rel_pos,
activation_fn); the legacy weight-norm keys `weight_g` / `weight_v` load as they are.

Outputs of `BEATs.forward(fbank, lengths)`:
  * logits: fine-tuned checkpoints only (None otherwise): the predictor applied to every token, then pooled
    as the reference does (masked tokens left out, sum / unmasked count); rows are permuted at load time
    through the checkpoint's `label_dict` so column i is row i of AudioSet's `class_labels_indices.csv`.
  * embedding [B, D]: the mean of the last layer's output over the unmasked tokens (the pooled clip
    embedding, the quantity the fine-tuned head is linear in).
  * frames [B, T // 16, D]: one per time patch (16 fbank frames = 160 ms, starting at k * 0.16 s): the
    mean over that patch's frequency tokens, masked tokens left out (a patch with every token masked, i.e.
    lying wholly in the padding, gets the plain mean of its tokens).

Padding masks follow the reference's arithmetic from `lengths` (valid samples per row): the sample mask is
reduced to fbank frames, then to tokens, each time by dropping the trailing len % n_out entries, cutting
the rest into n_out equal chunks and marking a position padded only when its whole chunk is. The
network sees the fbank, not the waveform, so it takes the window length N as the 10 ms multiple giving
T frames, N = 160 * (T + 2) (exact for every window of whole 10 ms; the chunk is 160 samples, whatever
N, from 400 frames up); `n_samples=` gives N explicitly. A row whose tokens would all be masked runs unmasked.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError, WeightsError
from ..frontends import KaldiFbank
from ..labels import Labels
from ..model import Network
from ..spec import ModelSpec
from ..weights import load_into
from . import FBANK_HOP, FBANK_WINDOW

if TYPE_CHECKING:
    from . import BeatsRelease


def _gelu_fp32(x: Tensor) -> Tensor:
    return F.gelu(x.float()).type_as(x)


def _gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


def _identity(x: Tensor) -> Tensor:
    return x


# cfg `activation_fn` -> the feed-forward activation ("glu" puts the gating inside fc1 instead)
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu, "gelu": _gelu_fp32, "gelu_fast": _gelu_tanh, "gelu_accurate": _gelu_tanh,
    "tanh": torch.tanh, "linear": _identity, "glu": _identity,
}


@dataclass(frozen=True)
class BeatsConfig:
    """The `cfg` fields that shape the eval forward pass; defaults are `BEATsConfig()`'s (not the release's)."""

    input_patch_size: int = -1
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = False
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    finetuned_model: bool = False
    predictor_class: int = 527

    @classmethod
    def from_cfg(cls, cfg: dict, source: str) -> "BeatsConfig":
        """Read a checkpoint's `cfg` (other keys, e.g. dropouts, are ignored); WeightsError when it is unusable."""
        values = {}
        for f in fields(cls):
            if f.name not in cfg:
                continue
            raw = cfg[f.name]
            kind = type(f.default)
            ok = isinstance(raw, str) if kind is str else isinstance(raw, (bool, int)) if kind is bool \
                else isinstance(raw, int) and not isinstance(raw, bool)
            if not ok:
                raise WeightsError(f"{source}: BEATs cfg {f.name}={raw!r} is not a {kind.__name__}")
            values[f.name] = kind(raw)
        config = cls(**values)
        problem = config.problem()
        if problem:
            raise WeightsError(f"{source}: unusable BEATs cfg: {problem}")
        return config

    def problem(self) -> str | None:
        """Why this configuration cannot be built, or None."""
        d, h = self.encoder_embed_dim, self.encoder_attention_heads
        checks = (
            (self.input_patch_size > 0, f"input_patch_size={self.input_patch_size} (must be > 0)"),
            (self.encoder_layers > 0, f"encoder_layers={self.encoder_layers}"),
            (min(self.embed_dim, d, self.encoder_ffn_embed_dim, h) > 0, "sizes must be > 0"),
            (d % h == 0, f"encoder_embed_dim {d} is not divisible by {h} heads"),
            (self.conv_pos > 0 and self.conv_pos_groups > 0 and d % self.conv_pos_groups == 0,
             f"encoder_embed_dim {d} does not split into conv_pos_groups={self.conv_pos_groups}"),
            (self.activation_fn in ACTIVATIONS, f"activation_fn {self.activation_fn!r} is not one of "
                                                f"{', '.join(ACTIVATIONS)}"),
            (not (self.deep_norm and self.layer_norm_first), "deep_norm with layer_norm_first"),
            (not self.relative_position_embedding
             or (self.num_buckets >= 4 and self.max_distance > self.num_buckets // 4),
             f"num_buckets={self.num_buckets}, max_distance={self.max_distance}"),
            (not self.finetuned_model or self.predictor_class == 527,
             f"predictor_class={self.predictor_class}, not the 527 AudioSet classes"),
        )
        return next((message for ok, message in checks if not ok), None)

    @property
    def deep_norm_alpha(self) -> float:
        """Residual scale of the post-LN layers: (2L)^(1/4) with deep norm, else 1."""
        return (2 * self.encoder_layers) ** 0.25 if self.deep_norm else 1.0


# The released BEATs_iter3+ cfg (the pre-trained one; fine-tuned files add finetuned_model and the predictor).
RELEASED_ARCHITECTURE = BeatsConfig(
    input_patch_size=16, embed_dim=512, conv_bias=False, encoder_layers=12, encoder_embed_dim=768,
    encoder_ffn_embed_dim=3072, encoder_attention_heads=12, activation_fn="gelu", layer_norm_first=False,
    deep_norm=True, conv_pos=128, conv_pos_groups=16, relative_position_embedding=True, num_buckets=320,
    max_distance=800, gru_rel_pos=True, finetuned_model=False, predictor_class=527,
)


class WeightNormConv1d(nn.Module):
    """Conv1d with legacy weight norm along dim 2: weight[:, :, k] = g[k] v[:, :, k] / ||v[:, :, k]||."""

    def __init__(self, channels: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.groups, self.padding = groups, kernel // 2
        v = torch.randn(channels, channels // groups, kernel) * math.sqrt(4.0 / (kernel * channels))
        self.weight_g = nn.Parameter(v.norm(dim=(0, 1), keepdim=True))
        self.weight_v = nn.Parameter(v)
        self.bias = nn.Parameter(torch.zeros(channels))

    def weight(self) -> Tensor:
        return self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight(), self.bias, padding=self.padding, groups=self.groups)


class DropLastStep(nn.Module):
    """Drops the extra output step an even kernel leaves after symmetric padding."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.drop = 1 if kernel % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        return x[..., :x.shape[-1] - self.drop]


class GluLinear(nn.Module):
    """fc1 of the "glu" activation: Linear to 2*out, first half times swish(second half)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, 2 * d_out)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.linear(x).chunk(2, dim=-1)
        return a * (b * torch.sigmoid(b))


@functools.lru_cache(maxsize=8)
def relative_position_buckets(n: int, num_buckets: int, max_distance: int) -> Tensor:
    """T5 bidirectional buckets [n, n] of (key index - query index), computed on the CPU in float32.

    Half the buckets per direction (keys to the right offset by half); distances below a quarter
    of the buckets are exact, larger ones log-spaced up to max_distance.
    """
    position = torch.arange(n, dtype=torch.long)
    relative = position[None, :] - position[:, None]
    half = num_buckets // 2
    exact = half // 2
    distance = relative.abs()
    log_scaled = (torch.log(distance.clamp(min=1).float() / exact) / math.log(max_distance / exact)
                  * (half - exact)).to(torch.long)
    far = (exact + log_scaled).clamp(max=half - 1)
    return (relative > 0).to(torch.long) * half + torch.where(distance < exact, distance, far)


class SelfAttention(nn.Module):
    """softmax(q k^T / sqrt(d_h) + gate * relative bias + key padding) v, then out_proj."""

    def __init__(self, dim: int, heads: int, gated: bool, num_buckets: int | None) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.gated = gated
        if gated:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))
        if num_buckets is not None:  # layer 0's table is shared by every layer (see `Encoder`)
            self.relative_attention_bias = nn.Embedding(num_buckets, heads)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: Tensor, position_bias: Tensor | None, padding_mask: Tensor | None) -> Tensor:
        q, k, v = self._heads(self.q_proj(x)), self._heads(self.k_proj(x)), self._heads(self.v_proj(x))
        bias = None
        if position_bias is not None:  # [H, N, N]
            bias = position_bias.unsqueeze(0)
            if self.gated:  # per query and head, from the unscaled query
                a, b = torch.sigmoid(self.grep_linear(q).unflatten(-1, (2, 4)).sum(-1)).chunk(2, dim=-1)
                bias = (a * (b * self.grep_a - 1.0) + 2.0) * bias
        if padding_mask is not None:  # padded keys get -inf
            blocked = torch.zeros(padding_mask.shape, dtype=q.dtype, device=q.device)
            blocked = blocked.masked_fill(padding_mask, float("-inf"))[:, None, None, :]
            bias = blocked if bias is None else bias + blocked
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if bias is None else bias.to(q.dtype))
        return self.out_proj(out.transpose(1, 2).flatten(2))


class EncoderLayer(nn.Module):
    """Post-LN with deep-norm (LN(alpha x + f(x))) or pre-LN (x + f(LN(x))) attention and feed-forward."""

    def __init__(self, config: BeatsConfig, relative_bias: bool) -> None:
        super().__init__()
        d, ffn = config.encoder_embed_dim, config.encoder_ffn_embed_dim
        self.self_attn = SelfAttention(d, config.encoder_attention_heads, config.gru_rel_pos,
                                       config.num_buckets if relative_bias else None)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = GluLinear(d, ffn) if config.activation_fn == "glu" else nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.activation = ACTIVATIONS[config.activation_fn]
        self.layer_norm_first = config.layer_norm_first
        self.alpha = config.deep_norm_alpha

    def feed_forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.activation(self.fc1(x)))

    def forward(self, x: Tensor, position_bias: Tensor | None, padding_mask: Tensor | None) -> Tensor:
        if self.layer_norm_first:
            x = x + self.self_attn(self.self_attn_layer_norm(x), position_bias, padding_mask)
            return x + self.feed_forward(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(self.alpha * x + self.self_attn(x, position_bias, padding_mask))
        return self.final_layer_norm(self.alpha * x + self.feed_forward(x))


class Encoder(nn.Module):
    """Masked tokens zeroed, + GELU(weight-norm grouped conv) positions, [LN], layers, [LN if layer_norm_first]."""

    def __init__(self, config: BeatsConfig) -> None:
        super().__init__()
        d = config.encoder_embed_dim
        self.pos_conv = nn.Sequential(WeightNormConv1d(d, config.conv_pos, config.conv_pos_groups),
                                      DropLastStep(config.conv_pos), nn.GELU())
        relative = config.relative_position_embedding
        self.layers = nn.ModuleList(EncoderLayer(config, relative) for _ in range(config.encoder_layers))
        if relative:  # one table, registered under every layer as in the checkpoints
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = self.layers[0].self_attn.relative_attention_bias
        self.layer_norm = nn.LayerNorm(d)
        self.layer_norm_first = config.layer_norm_first
        self.relative = relative
        self.num_buckets, self.max_distance = config.num_buckets, config.max_distance

    def position_bias(self, n: int, device: torch.device) -> Tensor | None:
        """Relative-position bias [H, n, n] from layer 0's table (reused by every layer), or None."""
        if not self.relative:
            return None
        buckets = relative_position_buckets(n, self.num_buckets, self.max_distance).to(device)
        return self.layers[0].self_attn.relative_attention_bias(buckets).permute(2, 0, 1)

    def layer_outputs(self, x: Tensor, padding_mask: Tensor | None = None) -> list[Tensor]:
        """Each layer's output [B, N, D] for tokens x [B, N, D] (True in padding_mask = padded token)."""
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        bias = self.position_bias(x.shape[1], x.device)
        outputs = []
        for layer in self.layers:
            x = layer(x, bias, padding_mask)
            outputs.append(x)
        return outputs

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        x = self.layer_outputs(x, padding_mask)[-1]
        return self.layer_norm(x) if self.layer_norm_first else x


def reduce_padding_mask(mask: Tensor, n_out: int) -> Tensor:
    """BEATs' mask reduction [B, n] -> [B, n_out]: drop n % n_out trailing entries, padded iff its whole chunk is."""
    n = mask.shape[1]
    if n < n_out:
        raise ConfigError(f"cannot reduce a padding mask of {n} entries to {n_out}")
    return mask[:, :n - n % n_out].reshape(mask.shape[0], n_out, -1).all(-1)


def masked_mean(x: Tensor, keep: Tensor | None, dim: int) -> Tensor:
    """Mean of x over `dim` counting only positions where keep [.., N] is True (all, where none is)."""
    if keep is None:
        return x.mean(dim)
    weights = keep.unsqueeze(-1).to(x.dtype)
    count = weights.sum(dim)
    return torch.where(count > 0, (x * weights).sum(dim) / count.clamp(min=1), x.mean(dim))


class BEATs(Network):
    """BEATs network: normalised fbank [B, T, n_mels] (+ valid samples per row) -> (logits, embedding, frames)."""

    masks_padding = True  # padded windows are masked as the reference masks them
    has_frames = True

    def __init__(self, config: BeatsConfig, n_mels: int = 128, fbank_window: int = FBANK_WINDOW,
                 fbank_hop: int = FBANK_HOP) -> None:
        super().__init__()
        self.config = config
        self.n_mels = n_mels
        self.fbank_window, self.fbank_hop = fbank_window, fbank_hop
        p = config.input_patch_size
        self.patch = p
        self.patch_embedding = nn.Conv2d(1, config.embed_dim, p, stride=p, bias=config.conv_bias)
        self.layer_norm = nn.LayerNorm(config.embed_dim)
        if config.embed_dim != config.encoder_embed_dim:
            self.post_extract_proj = nn.Linear(config.embed_dim, config.encoder_embed_dim)
        else:
            self.post_extract_proj = None
        self.encoder = Encoder(config)
        self.predictor = nn.Linear(config.encoder_embed_dim, config.predictor_class) \
            if config.finetuned_model else None
        self.has_scores = self.predictor is not None

    @property
    def frequency_patches(self) -> int:
        return self.n_mels // self.patch

    def time_patches(self, n_frames: int) -> int:
        return n_frames // self.patch

    def window_samples(self, n_frames: int) -> int:
        """The window length assumed for an n_frames fbank: the 10 ms multiple that gives n_frames."""
        return self.fbank_hop * (n_frames - 1) + self.fbank_window + self.fbank_hop // 2

    def frame_starts(self, n_rows: int) -> np.ndarray:
        """Fbank row of each time-patch frame: k * patch."""
        return np.arange(self.time_patches(n_rows)) * self.patch

    def frame_padding_mask(self, lengths: Tensor, n_frames: int, n_samples: int | None = None) -> Tensor:
        """Fbank-frame mask [B, n_frames] (True = padded) of rows with `lengths` valid samples."""
        n = self.window_samples(n_frames) if n_samples is None else n_samples
        samples = torch.arange(n, device=lengths.device)[None, :] >= lengths[:, None]
        return reduce_padding_mask(samples, n_frames)

    def token_padding_mask(self, lengths: Tensor, n_frames: int, n_samples: int | None = None) -> Tensor:
        """Token mask [B, N_tok] (True = padded), reduced from the frame mask as the reference does."""
        frames = self.frame_padding_mask(lengths, n_frames, n_samples)
        n_tokens = self.time_patches(n_frames) * self.frequency_patches
        if n_tokens <= n_frames:
            return reduce_padding_mask(frames, n_tokens)
        # more tokens than frames (patches under 16): the reference's chunks would be empty and mask every
        # token, so a token is padded here when all frames of its time patch are
        covered = frames[:, :self.time_patches(n_frames) * self.patch]
        per_patch = covered.unflatten(1, (-1, self.patch)).all(-1)
        return per_patch.repeat_interleave(self.frequency_patches, dim=1)

    def patch_tokens(self, fbank: Tensor) -> Tensor:
        """Patch embedding + LayerNorm: [B, T, n_mels] -> time-major tokens [B, N_tok, embed_dim]."""
        if fbank.shape[1] < self.patch:
            raise ConfigError(f"BEATs needs at least {self.patch} fbank frames "
                              f"({self.window_samples(self.patch)} samples), got {fbank.shape[1]}")
        return self.layer_norm(self.patch_embedding(fbank.unsqueeze(1)).flatten(2).transpose(1, 2))

    def extract_features(self, fbank: Tensor, lengths: Tensor | None = None,
                         n_samples: int | None = None) -> tuple[Tensor, Tensor | None]:
        """Last layer output [B, N_tok, D] and the token padding mask (None when nothing is padded)."""
        tokens = self.patch_tokens(fbank)
        mask = None
        if lengths is not None:
            mask = self.token_padding_mask(lengths.to(fbank.device), fbank.shape[1], n_samples)
            mask = mask & ~mask.all(dim=1, keepdim=True)  # a wholly padded row has nothing to mask to
            mask = mask if bool(mask.any()) else None
        if self.post_extract_proj is not None:
            tokens = self.post_extract_proj(tokens)
        return self.encoder(tokens, mask), mask

    def forward(self, fbank: Tensor, lengths: Tensor | None = None,
                n_samples: int | None = None) -> tuple[Tensor | None, Tensor, Tensor]:
        x, mask = self.extract_features(fbank, lengths, n_samples)
        keep = None if mask is None else ~mask
        logits = None if self.predictor is None else masked_mean(self.predictor(x), keep, dim=1)
        b, n, d = x.shape
        per_patch = x.view(b, n // self.frequency_patches, self.frequency_patches, d)
        frames = masked_mean(per_patch, None if keep is None else keep.view(per_patch.shape[:3]), dim=2)
        return logits, masked_mean(x, keep, dim=1), frames

    @torch.no_grad()
    def reorder_classes(self, csv_rows: list[int]) -> None:
        """Move predictor output i to row csv_rows[i], so outputs follow the AudioSet CSV order."""
        rows = torch.as_tensor(csv_rows, dtype=torch.long)
        for param in (self.predictor.weight, self.predictor.bias):
            moved = torch.empty_like(param)
            moved[rows] = param.data
            param.copy_(moved)


def csv_rows_of(label_dict: object, n_classes: int, source: str, labels: Labels) -> list[int]:
    """CSV row of each model output from a checkpoint's `label_dict` {output index: AudioSet mid}."""
    if not isinstance(label_dict, dict):
        raise WeightsError(f"{source}: label_dict is a {type(label_dict).__name__}, not a dict")
    try:
        by_index = {int(k): v for k, v in label_dict.items()}
    except (TypeError, ValueError):
        raise WeightsError(f"{source}: label_dict keys are not output indices") from None
    if sorted(by_index) != list(range(n_classes)):
        raise WeightsError(f"{source}: label_dict does not cover outputs 0..{n_classes - 1} exactly")
    row_of = {mid: i for i, mid in enumerate(labels.mids)}
    unknown = [str(by_index[i]) for i in range(n_classes) if by_index[i] not in row_of]
    if unknown:
        raise WeightsError(f"{source}: label_dict has mids not in the label file: {', '.join(unknown[:3])}")
    rows = [row_of[by_index[i]] for i in range(n_classes)]
    if len(set(rows)) != n_classes:
        raise WeightsError(f"{source}: label_dict maps two outputs to the same AudioSet class")
    return rows


def _unpack(checkpoint: object, source: str) -> tuple[dict, dict, object]:
    """(cfg, state dict, label_dict or None) of a released-format checkpoint."""
    if not (isinstance(checkpoint, dict) and isinstance(checkpoint.get("cfg"), dict)
            and isinstance(checkpoint.get("model"), dict)):
        found = ", ".join(map(str, list(checkpoint)[:4])) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise WeightsError(f"{source}: not a BEATs checkpoint (expected a dict with 'cfg' and 'model' entries; "
                           f"found {found or 'nothing'})")
    state = checkpoint["model"]
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{source}: the BEATs 'model' entry is not a state dict of tensors")
    return checkpoint["cfg"], state, checkpoint.get("label_dict")


def build(spec: ModelSpec, checkpoint: object | None, source: str, labels: Labels) -> tuple[KaldiFbank, BEATs]:
    """(Kaldi fbank front-end, BEATs network) from the checkpoint's cfg, or the released architecture if None."""
    release: BeatsRelease = spec.config
    if checkpoint is None:
        return release.frontend(), BEATs(release.architecture(), n_mels=release.n_mels).eval()
    cfg, state, label_dict = _unpack(checkpoint, source)
    config = BeatsConfig.from_cfg(cfg, source)
    network = BEATs(config, n_mels=release.n_mels)
    load_into(network, state, source, spec.name)
    if network.predictor is not None and label_dict is not None:
        network.reorder_classes(csv_rows_of(label_dict, config.predictor_class, source, labels))
    return release.frontend(), network.eval()
