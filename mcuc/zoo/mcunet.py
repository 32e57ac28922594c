"""MCUNet / ProxylessNAS-style networks: per-block kernel size and expand ratio, configured by plain data."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from mcuc.zoo.mobilenetv2 import ConvBNAct, InvertedResidual, init_cnn_weights, make_divisible


@dataclass(frozen=True)
class MBBlock:
    """One mobile inverted bottleneck: 1x1 expand (x expand), kxk depthwise (stride), 1x1 project."""

    channels: int
    kernel: int = 3
    expand: int = 6
    stride: int = 1


@dataclass(frozen=True)
class MCUNetConfig:
    """Whole-network description; channel counts are before the width multiplier."""

    resolution: int
    blocks: tuple[MBBlock, ...]
    first_channels: int = 16
    first_block_channels: int = 8
    final_channels: int | None = None
    num_classes: int = 10
    in_channels: int = 3
    width: float = 1.0
    dropout: float = 0.0


def _stage(channels: int, stride: int, kernels_expands: list[tuple[int, int]]) -> tuple[MBBlock, ...]:
    """A stage: the first block carries the stride, the rest keep the resolution."""
    return tuple(MBBlock(channels, k, e, stride if i == 0 else 1) for i, (k, e) in enumerate(kernels_expands))


# An 80x80 two-class Visual-Wake-Words-like network in the spirit of MCUNet's mcunet-vww1 (mcunet-5fps_vww):
# 3x3 s2 stem to 16 channels, a depthwise-separable block to 8, then stages of 16/24/40/48/96/160 channels
# at strides 2/2/2/1/2/1 with searched-looking mixes of 3/5/7 kernels and 3/4/6 expand ratios, no final
# 1x1 conv and a 160->2 classifier. The exact per-block choices of the released model were not available;
# these are chosen to land in the same size class (10.7 M MACs, 0.49 M parameters at 80x80).
MCUNET_VWW1 = MCUNetConfig(
    resolution=80,
    first_channels=16,
    first_block_channels=8,
    blocks=(
        _stage(16, 2, [(7, 3), (3, 4)])
        + _stage(24, 2, [(5, 4), (5, 3), (5, 3)])
        + _stage(40, 2, [(7, 6), (3, 4), (5, 3)])
        + _stage(48, 1, [(5, 4), (3, 4)])
        + _stage(96, 2, [(7, 6), (5, 4), (3, 3)])
        + _stage(160, 1, [(7, 6)])
    ),
    final_channels=None,
    num_classes=2,
)

# A small 32x32 network for fast tests and the Fashion-MNIST demo: every block kind (3/5/7 kernels,
# expand 3/4/6, strided and residual blocks) appears at least once.
MCUNET_TINY = MCUNetConfig(
    resolution=32,
    first_channels=16,
    first_block_channels=8,
    blocks=(
        _stage(16, 1, [(3, 4), (5, 3)])
        + _stage(32, 2, [(7, 6), (3, 4)])
        + _stage(48, 2, [(5, 4), (3, 3)])
    ),
    final_channels=96,
    num_classes=10,
)


class MCUNet(nn.Module):
    """Stem conv 3x3 s2 -> depthwise-separable block -> MBConv blocks -> [1x1 conv] -> GAP -> Linear."""

    def __init__(self, config: MCUNetConfig) -> None:
        super().__init__()
        self.config = config

        def ch(c: int) -> int:
            return make_divisible(c * config.width, 8)

        stem = ch(config.first_channels)
        cin = ch(config.first_block_channels)
        layers: list[nn.Module] = [
            ConvBNAct(config.in_channels, stem, 3, 2),
            InvertedResidual(stem, cin, 1, 1),
        ]
        for block in config.blocks:
            cout = ch(block.channels)
            layers.append(InvertedResidual(cin, cout, block.stride, block.expand, block.kernel))
            cin = cout
        if config.final_channels is not None:
            layers.append(ConvBNAct(cin, ch(config.final_channels), 1))
            cin = ch(config.final_channels)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        head: list[nn.Module] = [nn.Dropout(config.dropout)] if config.dropout > 0 else []
        self.classifier = nn.Sequential(*head, nn.Linear(cin, config.num_classes))
        init_cnn_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def with_overrides(config: MCUNetConfig, **overrides: object) -> MCUNetConfig:
    """Copy of `config` with some top-level fields replaced (resolution, num_classes, width, ...)."""
    return replace(config, **overrides)  # type: ignore[arg-type]
