"""The layer classes bench/kernels.py counts, shared with bench/cmsis_nn.py (CMSIS-NN's side)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    """One layer class: ``kind`` conv | fc | add | avgpool | matmul | attention | layernorm | softmax, with its
    shape."""

    name: str
    kind: str
    cin: int = 0
    cout: int = 0
    k: int = 1
    stride: int = 1
    hw: int = 1
    groups: int = 1
    # matmul/attention: (batch, M, K, N) / (heads, tokens, dim); layernorm, softmax: (rows, C)
    extra: tuple[int, ...] = ()

    @property
    def pad(self) -> int:
        return self.k // 2
