"""Integer-exact int8 softmax over the last axis with a 256-entry exp table: prepare + numpy reference.

Algorithm (identical in mcuc/runtime_c/src/mcuc_softmax_s8.c), per row of length n <= 65535:

    d   = max(row) - x                      0 <= d <= 255
    e   = exp_table[d]                      exp_table[d] = round(exp(-d * s_in) * 2^16)
    sum = sum(e)                            <= 65535 * 2^16 < 2^32: exact in uint32
    out = min((e * 256 + sum // 2) // sum - 128, 127)

The output has scale 1/256 and zero point -128 (TFLite's int8 softmax output quantization).
e * 256 + sum // 2 < 2^24 + 2^31 also stays in uint32. ``s_in`` is the input scale times
softmax's beta. The table is built here and emitted as data, so C and numpy agree exactly.
This is not TFLite's softmax algorithm; results may differ from it by a few LSB.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXP_TABLE_BITS = 16
MAX_ROW_SIZE = 65535
OUTPUT_SCALE = 1.0 / 256.0
OUTPUT_ZERO_POINT = -128


@dataclass(frozen=True)
class SoftmaxParams:
    """mcuc_softmax_params_t plus the exp table passed alongside it."""

    rows: int
    row_size: int
    exp_table: np.ndarray  # uint32[256]


def make_exp_table(in_scale: float, beta: float = 1.0) -> np.ndarray:
    """uint32[256]: round(exp(-d * in_scale * beta) * 2^16) for d = 0..255 (entry 0 is 2^16)."""
    d = np.arange(256, dtype=np.float64)
    return np.rint(np.exp(-d * (in_scale * beta)) * (1 << EXP_TABLE_BITS)).astype(np.uint32)


def prepare_softmax(shape: tuple[int, ...], in_scale: float, beta: float = 1.0) -> SoftmaxParams:
    """Softmax over the last axis of ``shape`` for input scale ``in_scale`` (the zero point cancels)."""
    if not shape or shape[-1] < 1 or shape[-1] > MAX_ROW_SIZE:
        raise ValueError(f"softmax row size must be in [1, {MAX_ROW_SIZE}], shape {shape}")
    if not in_scale * beta > 0:
        raise ValueError("softmax needs a positive input scale * beta")
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    return SoftmaxParams(rows, int(shape[-1]), make_exp_table(in_scale, beta))


def softmax_s8(params: SoftmaxParams, x: np.ndarray) -> np.ndarray:
    """mcuc_softmax_s8 over the last axis of ``x``."""
    if x.shape[-1] != params.row_size or x.size != params.rows * params.row_size:
        raise ValueError(f"input shape {x.shape} does not match params")
    xi = x.astype(np.int64)
    d = xi.max(axis=-1, keepdims=True) - xi
    e = params.exp_table.astype(np.int64)[d]
    total = e.sum(axis=-1, keepdims=True)
    q = (e * 256 + total // 2) // total - 128
    return np.minimum(q, 127).astype(np.int8)
