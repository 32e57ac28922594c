"""Compact DHVT (Lu et al., NeurIPS 2022): SOPE conv stem, head tokens (HI-MHSA) and DAFF feed-forward.

Written for plain opset-17 ONNX export at batch 1: attention is explicit MatMul/Softmax, every reshape uses
static token counts (batch as -1), learned tokens are concatenated without Shape/Expand ops, and GELU is the
exact erf form. The layer structure follows the authors' code (github ArieSeirack/DHVT), scaled down.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn


@dataclass(frozen=True)
class DHVTConfig:
    """Whole-network description; `patch` must be a power of two (one stride-2 conv per halving)."""

    resolution: int = 32
    patch: int = 4
    dim: int = 64
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    num_classes: int = 10
    in_channels: int = 3
    qkv_bias: bool = True

    @property
    def grid(self) -> int:
        """Patch tokens per side."""
        return self.resolution // self.patch


DHVT_DEFAULT = DHVTConfig()
DHVT_SMALL = DHVTConfig(dim=48, depth=4, heads=3)


def init_linear_weights(model: nn.Module) -> None:
    """ViT initialisation of every Linear: truncated normal (std 0.02) weights, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def batch_tokens(token: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Learned (1, n, C) tokens repeated over the batch of `like`.

    Exports are traced at batch 1, where the parameter is used as is, so no Shape/Expand ops reach the ONNX
    graph; in eager mode (training) it is expanded to the batch.
    """
    if torch.jit.is_tracing() or like.shape[0] == 1:
        return token
    return token.expand(like.shape[0], -1, -1)


def split_heads(x: torch.Tensor, tokens: int, heads: int, head_dim: int) -> torch.Tensor:
    """(B, N, C) -> (B, heads, N, C / heads); sizes are Python ints so the export has no Shape ops."""
    return x.reshape(-1, tokens, heads, head_dim).transpose(1, 2)


def merge_heads(x: torch.Tensor, tokens: int, dim: int) -> torch.Tensor:
    """(B, heads, N, C / heads) -> (B, N, C) with static sizes."""
    return x.transpose(1, 2).reshape(-1, tokens, dim)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale) v over the last two axes, written out so it exports as MatMul/Mul/Softmax."""
    scores = (q @ k.transpose(-2, -1)) * scale
    return scores.softmax(dim=-1) @ v


class Attention(nn.Module):
    """Multi-head attention over a fixed number of tokens; the first `queries` tokens are the queries.

    queries = tokens is self-attention; queries = 1 is CrossViT's class-token cross-attention, whose cost is
    linear in the token count.
    """

    def __init__(self, dim: int, heads: int, tokens: int, queries: int | None = None, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.dim, self.heads, self.tokens = dim, heads, tokens
        self.queries = tokens if queries is None else queries
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xq = x if self.queries == self.tokens else x[:, :self.queries]
        hd = self.dim // self.heads
        q = split_heads(self.q(xq), self.queries, self.heads, hd)
        k = split_heads(self.k(x), self.tokens, self.heads, hd)
        v = split_heads(self.v(x), self.tokens, self.heads, hd)
        return self.proj(merge_heads(attend(q, k, v, self.scale), self.queries, self.dim))


class Affine(nn.Module):
    """Per-channel scale and shift of an NCHW tensor (SOPE's pre- and post-affine)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.alpha + self.beta


class SOPE(nn.Module):
    """Sequential overlapping patch embedding: affine, log2(patch) x (3x3 s2 conv + BN, GELU between), affine.

    Channels grow to `dim` in the last conv and to dim / 2^(k-1-i) before it (patch 4: in -> dim/2 -> dim).
    """

    def __init__(self, in_channels: int, dim: int, patch: int, resolution: int) -> None:
        super().__init__()
        steps = patch.bit_length() - 1
        if patch < 2 or 1 << steps != patch:
            raise ValueError(f"SOPE patch size must be a power of two >= 2, got {patch}")
        widths = [dim >> (steps - 1 - i) for i in range(steps)]
        layers: list[nn.Module] = []
        cin = in_channels
        for i, cout in enumerate(widths):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout)]
            if i < steps - 1:
                layers.append(nn.GELU())
            cin = cout
        self.dim, self.tokens = dim, (resolution // patch) ** 2
        self.pre_affine = Affine(in_channels)
        self.proj = nn.Sequential(*layers)
        self.post_affine = Affine(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.post_affine(self.proj(self.pre_affine(x)))
        return x.reshape(-1, self.dim, self.tokens).transpose(1, 2)


class HIAttention(nn.Module):
    """Multi-head self-attention with head tokens (HI-MHSA).

    Each head's channel group is averaged over the tokens, projected to `dim`, normalised and activated, and
    given a learned position embedding; these `heads` tokens join the attention and their outputs are averaged
    into the class token. The output has the input's token count. The head-token LayerNorm spans the full
    width (the authors' code normalises each head-sized channel group of the projection separately).
    """

    def __init__(self, dim: int, heads: int, tokens: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.dim, self.heads, self.tokens = dim, heads, tokens
        self.attn = Attention(dim, heads, tokens + heads, qkv_bias=qkv_bias)
        self.ht_proj = nn.Linear(dim // heads, dim)
        self.ht_norm = nn.LayerNorm(dim)
        self.ht_act = nn.GELU()
        self.ht_pos = nn.Parameter(torch.zeros(1, heads, dim))
        nn.init.trunc_normal_(self.ht_pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h = self.tokens, self.heads
        groups = x.reshape(-1, n, h, self.dim // h).mean(dim=1)  # (B, heads, dim/heads)
        head_tokens = self.ht_act(self.ht_norm(self.ht_proj(groups))) + self.ht_pos
        x = self.attn(torch.cat([x, head_tokens], dim=1))
        cls, patches, head_out = torch.split(x, [1, n - 1, h], dim=1)
        cls = cls + head_out.mean(dim=1, keepdim=True)
        return torch.cat([cls, patches], dim=1)


class DAFF(nn.Module):
    """Depthwise-aggregated feed-forward on the patch-token grid; the class token is gated around it.

    Patch tokens: 1x1 conv + BN + GELU (expand), depthwise 3x3 + BN + GELU with a residual, 1x1 conv + BN.
    Class token: multiplied channel-wise by Linear(GELU(Linear(mean of the output grid))).
    """

    def __init__(self, dim: int, hidden: int, grid: int) -> None:
        super().__init__()
        self.dim, self.grid = dim, grid
        self.expand = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.BatchNorm2d(hidden), nn.GELU())
        self.dwconv = nn.Sequential(nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden), nn.BatchNorm2d(hidden),
                                    nn.GELU())
        self.project = nn.Sequential(nn.Conv2d(hidden, dim, 1), nn.BatchNorm2d(dim))
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.compress = nn.Linear(dim, dim // 4)
        self.act = nn.GELU()
        self.excite = nn.Linear(dim // 4, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, dim = self.grid, self.dim
        cls, tokens = torch.split(x, [1, g * g], dim=1)
        y = self.expand(tokens.transpose(1, 2).reshape(-1, dim, g, g))
        y = y + self.dwconv(y)
        y = self.project(y)
        gate = self.excite(self.act(self.compress(self.squeeze(y).reshape(-1, 1, dim))))
        return torch.cat([cls * gate, y.reshape(-1, dim, g * g).transpose(1, 2)], dim=1)


class DHVTBlock(nn.Module):
    """Pre-norm transformer block: x + HI-MHSA(LN(x)), then x + DAFF(LN(x))."""

    def __init__(self, config: DHVTConfig) -> None:
        super().__init__()
        tokens = config.grid ** 2 + 1
        self.norm1 = nn.LayerNorm(config.dim)
        self.attn = HIAttention(config.dim, config.heads, tokens, config.qkv_bias)
        self.norm2 = nn.LayerNorm(config.dim)
        self.mlp = DAFF(config.dim, int(config.dim * config.mlp_ratio), config.grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DHVT(nn.Module):
    """SOPE stem -> class token -> DHVT blocks -> LayerNorm -> Linear on the class token."""

    onnx_opset = 17  # LayerNormalization
    onnx_fold_constants = True  # pre-transposed MatMul weights and constant Slice bounds in the file

    def __init__(self, config: DHVTConfig) -> None:
        super().__init__()
        if config.resolution % config.patch:
            raise ValueError(f"resolution {config.resolution} is not a multiple of patch {config.patch}")
        self.config = config
        self.patch_embed = SOPE(config.in_channels, config.dim, config.patch, config.resolution)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.blocks = nn.Sequential(*(DHVTBlock(config) for _ in range(config.depth)))
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.num_classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        init_linear_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = self.blocks(torch.cat([batch_tokens(self.cls_token, x), x], dim=1))
        return self.head(self.norm(x[:, 0]))


def with_overrides(config: DHVTConfig, **overrides: object) -> DHVTConfig:
    """Copy of `config` with some fields replaced (resolution, dim, depth, heads, num_classes, ...)."""
    return replace(config, **overrides)  # type: ignore[arg-type]
