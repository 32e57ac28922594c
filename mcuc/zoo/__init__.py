"""Model zoo: seeded PyTorch builders for test and benchmark models, and the Fashion-MNIST demo data."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mcuc.zoo import crossvit, dhvt
from mcuc.zoo.mcunet import MCUNET_TINY, MCUNET_VWW1, MCUNet, MCUNetConfig, with_overrides
from mcuc.zoo.mobilenetv2 import MobileNetV2

DATA_DIR = Path(__file__).parent / "data"
DEMO_ONNX = DATA_DIR / "demo_fmnist.onnx"
DEMO_JSON = DATA_DIR / "demo_fmnist.json"
DEMO_CALIB = DATA_DIR / "demo_calib.npy"
DEMO_SAMPLES = DATA_DIR / "demo_samples.npz"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclass(frozen=True)
class ZooEntry:
    """A registered model: its builder and the keyword defaults `build` starts from."""

    builder: Callable[..., tuple[nn.Module, tuple[int, int, int, int]]]
    defaults: dict[str, Any]
    description: str


def _mobilenetv2(width: float = 1.0, resolution: int = 224, num_classes: int = 1000,
                 in_channels: int = 3) -> tuple[nn.Module, tuple[int, int, int, int]]:
    model = MobileNetV2(width=width, num_classes=num_classes, in_channels=in_channels)
    return model, (1, in_channels, resolution, resolution)


def _mcunet(config: MCUNetConfig, **overrides: Any) -> tuple[nn.Module, tuple[int, int, int, int]]:
    cfg = with_overrides(config, **overrides)
    return MCUNet(cfg), (1, cfg.in_channels, cfg.resolution, cfg.resolution)


def _dhvt(config: dhvt.DHVTConfig, **overrides: Any) -> tuple[nn.Module, tuple[int, int, int, int]]:
    cfg = dhvt.with_overrides(config, **overrides)
    return dhvt.DHVT(cfg), (1, cfg.in_channels, cfg.resolution, cfg.resolution)


def _crossvit(config: crossvit.CrossViTConfig, **overrides: Any) -> tuple[nn.Module, tuple[int, int, int, int]]:
    cfg = crossvit.with_overrides(config, **overrides)
    return crossvit.CrossViT(cfg), (1, cfg.in_channels, cfg.resolution, cfg.resolution)


ZOO: dict[str, ZooEntry] = {
    "mobilenetv2": ZooEntry(_mobilenetv2, {"width": 1.0, "resolution": 224},
                            "MobileNetV2, width 1.0, 224x224, 1000 classes"),
    "mobilenetv2-0.35": ZooEntry(_mobilenetv2, {"width": 0.35, "resolution": 144},
                                 "MobileNetV2, width 0.35, 144x144, 1000 classes"),
    "mcunet-vww1": ZooEntry(lambda **kw: _mcunet(MCUNET_VWW1, **kw), {},
                            "MCUNet-style 80x80 two-class network resembling mcunet-vww1"),
    "mcunet-tiny": ZooEntry(lambda **kw: _mcunet(MCUNET_TINY, **kw), {},
                            "small MCUNet-style 32x32 network for tests and the Fashion-MNIST demo"),
    "dhvt": ZooEntry(lambda **kw: _dhvt(dhvt.DHVT_DEFAULT, **kw), {},
                     "compact DHVT, 32x32, patch 4, dim 64, 6 blocks, 4 heads, MLP ratio 4 (opset 17)"),
    "dhvt-small": ZooEntry(lambda **kw: _dhvt(dhvt.DHVT_SMALL, **kw), {},
                           "compact DHVT, 32x32, patch 4, dim 48, 4 blocks, 3 heads, MLP ratio 4 (opset 17)"),
    "crossvit": ZooEntry(lambda **kw: _crossvit(crossvit.CROSSVIT_DEFAULT, **kw), {},
                         "compact CrossViT, 32x32, patches 4/8, dims 48/96, 2 stages of 1+2 blocks (opset 17)"),
    "crossvit-small": ZooEntry(lambda **kw: _crossvit(crossvit.CROSSVIT_SMALL, **kw), {},
                               "compact CrossViT, 32x32, patches 4/8, dims 32/64, 2 stages of 1+1 blocks (opset 17)"),
}


def randomize_bn_statistics(model: nn.Module, input_shape: tuple[int, ...], seed: int = 0,
                            batch_size: int = 2) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters, so BN folding is exercised.

    Running means/vars come from one random batch in train mode with momentum 1, so they are the
    batch statistics of real activations; gamma/beta are drawn from a seeded generator.
    """
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.copy_(1.0 + 0.2 * torch.randn(bn.num_features, generator=gen))
            bn.bias.copy_(0.1 * torch.randn(bn.num_features, generator=gen))
            bn.momentum = 1.0
        model.train()
        model(torch.randn((batch_size, *input_shape[1:]), generator=gen))
        for bn in bns:
            bn.momentum = 0.1
    model.eval()


def randomize_norm_affine(model: nn.Module, seed: int = 0) -> None:
    """Give LayerNorm scales/shifts and Linear biases seeded non-trivial values (no-op for models without LayerNorm).

    Freshly initialised transformers have unit scales and zero shifts and biases; random values exercise the
    compiler's handling of them, and distinct values keep the ONNX exporter from deduplicating initializers
    into Identity nodes.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    if not norms:
        return
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for ln in norms:
            ln.weight.copy_(1.0 + 0.2 * torch.randn(ln.weight.shape, generator=gen))
            ln.bias.copy_(0.1 * torch.randn(ln.bias.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.copy_(0.02 * torch.randn(m.bias.shape, generator=gen))


def build(name: str, seed: int = 0, **overrides: Any) -> tuple[nn.Module, tuple[int, int, int, int]]:
    """Build zoo model `name` in eval mode with seeded weights and BN statistics; returns (model, NCHW shape).

    `overrides` replace the entry's defaults, e.g. build("mobilenetv2", width=0.5, resolution=96).
    """
    if name not in ZOO:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(sorted(ZOO))}")
    entry = ZOO[name]
    torch.manual_seed(seed)
    model, input_shape = entry.builder(**{**entry.defaults, **overrides})
    randomize_bn_statistics(model, input_shape, seed=seed)
    randomize_norm_affine(model, seed=seed)
    return model.eval(), input_shape


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (big-endian header: magic with dtype and rank, then the dimensions)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def preprocess_fashion_mnist(images_u8: np.ndarray, resolution: int = 32) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 3, R, R): bilinear resize, 3 channels, (x/255 - 0.5) / 0.5."""
    x = torch.from_numpy(images_u8.astype(np.float32) / 255.0).unsqueeze(1)
    x = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear",
                                        align_corners=False)
    x = (x - 0.5) / 0.5
    return x.repeat(1, 3, 1, 1).numpy().astype(np.float32)


def load_fashion_mnist(split: str = "test", resolution: int = 32,
                       root: Path = FASHION_MNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST from the Debian dataset files: (float32 (N, 3, R, R) normalised images, int64 labels)."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images = read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return preprocess_fashion_mnist(images, resolution), labels


def demo_metadata() -> dict[str, Any]:
    """The demo model's JSON: preprocessing, class names, measured float accuracy."""
    return json.loads(DEMO_JSON.read_text())


__all__ = [
    "ZOO", "ZooEntry", "build", "read_idx", "load_fashion_mnist", "preprocess_fashion_mnist", "demo_metadata",
    "randomize_bn_statistics", "randomize_norm_affine", "DEMO_ONNX", "DEMO_JSON", "DEMO_CALIB", "DEMO_SAMPLES",
    "FASHION_MNIST_CLASSES", "FASHION_MNIST_DIR",
]
