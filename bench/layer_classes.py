"""The layer classes bench/kernels.py counts, shared with bench/cmsis_nn.py (CMSIS-NN's side)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    """One layer class: ``kind`` conv | fc | add | mul | avgpool | matmul | attention | layernorm | softmax,
    with its shape."""

    name: str
    kind: str
    cin: int = 0
    cout: int = 0
    k: int = 1
    stride: int = 1
    hw: int = 1
    groups: int = 1
    extra: tuple[int, ...] = ()  # matmul (batch, M, K, N); attention (heads, tokens, dim); layernorm, softmax (rows, C)
    padding: int = -1  # conv: zeros on each side; -1 for k // 2

    @property
    def pad(self) -> int:
        return self.k // 2 if self.padding < 0 else self.padding
