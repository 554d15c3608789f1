"""The EfficientAT Dynamic MobileNet network (`dymn*_as`): dynamic convolution, dynamic ReLU, coordinate attention.

Laid out so the released checkpoints load with strict=True. The AudioSet checkpoints are used
with Dy-Conv softmax temperature 1.0, as EfficientAT's loader sets it (it is not stored).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..mobilenet.network import BLOCKS, BN_EPS, BN_MOMENTUM, ConvBNAct, make_divisible
from ..model import Network


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class DynamicConv(nn.Module):
    """K kernels mixed per item by a softmax attention over the context: conv with Σ_k a_k W_k."""

    def __init__(self, c_in: int, c_out: int, context: int, kernel: int, stride: int = 1, groups: int = 1,
                 k: int = 4, temperature: float = 1.0) -> None:
        super().__init__()
        self.c_in, self.c_out, self.kernel, self.stride, self.groups = c_in, c_out, kernel, stride, groups
        self.padding = (kernel - 1) // 2
        self.temperature = temperature
        self.residuals = nn.Sequential(nn.Linear(context, k))
        # stored as [1, attention groups, K, out * in/groups * k * k]
        self.weight = nn.Parameter(torch.empty(1, 1, k, c_out * (c_in // groups) * kernel * kernel))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: Tensor, h_c: Tensor) -> Tensor:
        b, _, f, t = x.shape
        attention = F.softmax(self.residuals(h_c.view(b, -1)).view(b, 1, 1, -1) / self.temperature, dim=-1)
        weight = (attention @ self.weight).transpose(1, 2).reshape(
            b * self.c_out, self.c_in // self.groups, self.kernel, self.kernel)
        out = F.conv2d(x.reshape(1, -1, f, t), weight, None, self.stride, self.padding, 1, self.groups * b)
        return out.view(b, self.c_out, out.size(-2), out.size(-1))


class DyReLUB(nn.Module):
    """Dynamic ReLU (B, M=2): per-channel max of two context-dependent lines."""

    def __init__(self, channels: int, context: int) -> None:
        super().__init__()
        self.channels = channels
        self.coef_net = nn.Sequential(nn.Linear(context, 4 * channels))
        self.register_buffer("lambdas", torch.tensor([1.0, 1.0, 0.5, 0.5]))
        self.register_buffer("init_v", torch.tensor([1.0, 0.0, 0.0, 0.0]))

    def forward(self, x: Tensor, h_c: Tensor) -> Tensor:
        theta = 2 * torch.sigmoid(self.coef_net(h_c.view(x.size(0), -1))) - 1
        coefs = theta.view(-1, self.channels, 1, 1, 4) * self.lambdas + self.init_v
        mapped = x.unsqueeze(-1) * coefs[..., :2] + coefs[..., 2:]
        return torch.maximum(mapped[..., 0], mapped[..., 1])


class ContextGen(nn.Module):
    """Frequency and time means -> joint 1x1 conv -> (h_c, frequency gates, time gates)."""

    def __init__(self, context: int, c_in: int, expanded: int, stride: int) -> None:
        super().__init__()
        self.joint_conv = nn.Conv2d(c_in, context, 1, bias=False)
        self.joint_norm = _bn(context)
        self.joint_act = nn.Hardswish()
        self.conv_f = nn.Conv2d(context, expanded, 1)
        self.conv_t = nn.Conv2d(context, expanded, 1)
        if stride > 1:
            self.pool_f = nn.AvgPool2d((3, 1), (stride, 1), (1, 0))
            self.pool_t = nn.AvgPool2d((1, 3), (1, stride), (0, 1))
        else:
            self.pool_f = self.pool_t = nn.Identity()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        cf = F.adaptive_avg_pool2d(x, (None, 1))  # [B, C, F, 1]
        ct = F.adaptive_avg_pool2d(x, (1, None)).permute(0, 1, 3, 2)  # [B, C, T, 1]
        f, t = cf.size(2), ct.size(2)
        g = self.joint_act(self.joint_norm(self.joint_conv(torch.cat([cf, ct], dim=2))))
        h_cf, h_ct = torch.split(g, [f, t], dim=2)
        h_c = torch.mean(g, dim=2, keepdim=True)
        return h_c, self.conv_f(self.pool_f(h_cf)), self.conv_t(self.pool_t(h_ct.permute(0, 1, 3, 2)))


class DyBlock(nn.Module):
    """Dynamic inverted residual: context -> [dyn expand] -> dyn depthwise -> DyReLU -> coord. attention -> dyn project."""

    def __init__(self, c_in: int, kernel: int, expanded: int, c_out: int, hs: bool, stride: int,
                 width_mult: float, temperature: float) -> None:
        super().__init__()
        context = int(min(max(make_divisible(expanded // 4), make_divisible(32 * width_mult)),
                          make_divisible(128 * width_mult)))
        act = nn.Hardswish if hs else nn.ReLU
        self.has_expand = expanded != c_in
        if self.has_expand:
            self.exp_conv = DynamicConv(c_in, expanded, context, 1, temperature=temperature)
            self.exp_norm = _bn(expanded)
            self.exp_act = act()
        self.depth_conv = DynamicConv(expanded, expanded, context, kernel, stride, groups=expanded,
                                      temperature=temperature)
        self.depth_norm = _bn(expanded)
        self.depth_act = DyReLUB(expanded, context)
        self.proj_conv = DynamicConv(expanded, c_out, context, 1, temperature=temperature)
        self.proj_norm = _bn(c_out)
        self.context_gen = ContextGen(context, c_in, expanded, stride)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        h_c, g_f, g_t = self.context_gen(x)
        y = x
        if self.has_expand:
            y = self.exp_act(self.exp_norm(self.exp_conv(y, h_c)))
        y = self.depth_act(self.depth_norm(self.depth_conv(y, h_c)), h_c)
        y = y * g_f.sigmoid() * g_t.sigmoid()  # coordinate attention
        y = self.proj_norm(self.proj_conv(y, h_c))
        return y + x if self.residual else y


class DyMN(Network):
    """EfficientAT `dymn` network: mel [B, 1, F, T] -> (logits [B, classes], embedding [B, D]).

    Not freezable: per-item kernels use a batch-dependent grouped conv, so it stays eager.
    """

    def __init__(self, width_mult: float = 1.0, num_classes: int = 527, dropout: float = 0.2,
                 temperature: float = 1.0) -> None:
        super().__init__()
        ch = lambda c: make_divisible(c * width_mult)  # noqa: E731
        self.layers = nn.ModuleList()  # registered first, as in the checkpoints
        c_in = ch(16)
        for kernel, expanded, c_out, _se, hs, stride in BLOCKS:
            self.layers.append(DyBlock(c_in, kernel, ch(expanded), ch(c_out), hs, stride, width_mult, temperature))
            c_in = ch(c_out)
        self.in_c = ConvBNAct(1, ch(16), 3, 2)
        self.embedding_dim = 6 * c_in
        self.out_c = ConvBNAct(c_in, self.embedding_dim, 1)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
            nn.Linear(self.embedding_dim, ch(1280)), nn.Hardswish(), nn.Dropout(dropout),
            nn.Linear(ch(1280), num_classes),
        )

    def forward(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        x = self.in_c(mel)
        for layer in self.layers:
            x = layer(x)
        pooled = self.classifier[1](self.classifier[0](self.out_c(x)))  # the embedding
        y = pooled
        for layer in self.classifier[2:]:
            y = layer(y)
        return y, pooled
