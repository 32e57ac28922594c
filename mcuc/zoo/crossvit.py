"""Compact CrossViT (Chen, Fan, Panda, ICCV 2021): two patch sizes, class-token cross-attention fusion.

Same export rules as mcuc.zoo.dhvt (opset 17, batch 1, explicit attention, static reshapes). The structure
follows the authors' code (github IBM/CrossViT): per-branch patch embedding, class token and position
embedding; multi-scale stages of per-branch transformer blocks followed by cross-attention fusion, where each
branch's class token is projected to the other branch's width, attends over that branch's patch tokens and is
projected back; the two classifier outputs are averaged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from mcuc.zoo.dhvt import Attention, batch_tokens, init_linear_weights


@dataclass(frozen=True)
class CrossViTConfig:
    """Two branches, index 0 = small patches (fine, narrow), 1 = large patches (coarse, wide)."""

    resolution: int = 32
    patches: tuple[int, int] = (4, 8)
    dims: tuple[int, int] = (48, 96)
    heads: tuple[int, int] = (3, 3)
    depths: tuple[int, int] = (1, 2)  # transformer blocks per branch in every stage
    stages: int = 2
    mlp_ratio: float = 1.5  # keeps the default under 2 MB of float32 weights
    num_classes: int = 10
    in_channels: int = 3
    qkv_bias: bool = True

    def tokens(self, branch: int) -> int:
        """Tokens of a branch including its class token."""
        return (self.resolution // self.patches[branch]) ** 2 + 1


CROSSVIT_DEFAULT = CrossViTConfig()
CROSSVIT_SMALL = CrossViTConfig(dims=(32, 64), heads=(2, 2), depths=(1, 1), mlp_ratio=2.0)


class Block(nn.Module):
    """Pre-norm ViT block: x + MHSA(LN(x)), then x + MLP(LN(x)) with a GELU MLP."""

    def __init__(self, dim: int, heads: int, tokens: int, mlp_ratio: float, qkv_bias: bool) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, tokens, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Fusion(nn.Module):
    """Cross-attention fusion into branch `src` from branch `dst`: cls(src) -> width of dst, attend, back.

    proj: LN, GELU, Linear(src -> dst); then t + Attention(LN([t, dst patch tokens])) with the projected class
    token t as the only query; revert: LN, GELU, Linear(dst -> src).
    """

    def __init__(self, src_dim: int, dst_dim: int, heads: int, dst_tokens: int, qkv_bias: bool) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(src_dim), nn.GELU(), nn.Linear(src_dim, dst_dim))
        self.norm = nn.LayerNorm(dst_dim)
        self.attn = Attention(dst_dim, heads, dst_tokens, queries=1, qkv_bias=qkv_bias)
        self.revert = nn.Sequential(nn.LayerNorm(dst_dim), nn.GELU(), nn.Linear(dst_dim, src_dim))

    def forward(self, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        cls = self.proj(src[:, :1])
        t = torch.cat([cls, dst[:, 1:]], dim=1)
        cls = cls + self.attn(self.norm(t))
        return torch.cat([self.revert(cls), src[:, 1:]], dim=1)


class MultiScaleStage(nn.Module):
    """Per-branch transformer blocks, then fusion of each branch's class token with the other branch."""

    def __init__(self, config: CrossViTConfig) -> None:
        super().__init__()
        c = config
        self.branches = nn.ModuleList(
            nn.Sequential(*(Block(c.dims[b], c.heads[b], c.tokens(b), c.mlp_ratio, c.qkv_bias)
                            for _ in range(c.depths[b])))
            for b in range(2)
        )
        self.fusions = nn.ModuleList(
            Fusion(c.dims[b], c.dims[1 - b], c.heads[1 - b], c.tokens(1 - b), c.qkv_bias) for b in range(2)
        )

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        return [self.fusions[0](outs[0], outs[1]), self.fusions[1](outs[1], outs[0])]


class CrossViT(nn.Module):
    """Two patch embeddings -> class tokens + position embeddings -> stages -> LN -> heads, averaged."""

    onnx_opset = 17  # LayerNormalization
    onnx_fold_constants = True  # pre-transposed MatMul weights and constant Slice bounds in the file

    def __init__(self, config: CrossViTConfig) -> None:
        super().__init__()
        c = config
        for p in c.patches:
            if c.resolution % p:
                raise ValueError(f"resolution {c.resolution} is not a multiple of patch {p}")
        self.config = c
        self.embed = nn.ModuleList(nn.Conv2d(c.in_channels, c.dims[b], c.patches[b], c.patches[b]) for b in range(2))
        self.cls_tokens = nn.ParameterList(nn.Parameter(torch.zeros(1, 1, c.dims[b])) for b in range(2))
        self.pos_embeds = nn.ParameterList(nn.Parameter(torch.zeros(1, c.tokens(b), c.dims[b])) for b in range(2))
        self.stages = nn.ModuleList(MultiScaleStage(c) for _ in range(c.stages))
        self.norms = nn.ModuleList(nn.LayerNorm(c.dims[b]) for b in range(2))
        self.heads = nn.ModuleList(nn.Linear(c.dims[b], c.num_classes) for b in range(2))
        for p in [*self.cls_tokens, *self.pos_embeds]:
            nn.init.trunc_normal_(p, std=0.02)
        init_linear_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, xs = self.config, []
        for b, (embed, cls, pos) in enumerate(zip(self.embed, self.cls_tokens, self.pos_embeds, strict=True)):
            t = embed(x).reshape(-1, c.dims[b], c.tokens(b) - 1).transpose(1, 2)
            xs.append(torch.cat([batch_tokens(cls, t), t], dim=1) + pos)
        for stage in self.stages:
            xs = stage(xs)
        logits = [head(norm(t[:, 0])) for t, norm, head in zip(xs, self.norms, self.heads, strict=True)]
        return (logits[0] + logits[1]) * 0.5


def with_overrides(config: CrossViTConfig, **overrides: object) -> CrossViTConfig:
    """Copy of `config` with some fields replaced (resolution, dims, depths, stages, num_classes, ...)."""
    return replace(config, **overrides)  # type: ignore[arg-type]
