"""Integer-exact int8 softmax over the last axis with a 256-entry exp table: prepare + numpy reference.

Algorithm (identical in mcuc/runtime_c/src/mcuc_softmax_s8.c), per row of length n <= 65535:

    d   = max(row) - x                      0 <= d <= 255
    e   = exp_table[d]                      exp_table[d] = round(exp(-d * s_in) * 2^B)
    sum = sum(e)                            <= n * 2^B < 2^32: exact in uint32
    out = min((e * L + sum // 2) // sum + zp, 127)

The output has scale 1/L and zero point zp, L an integer in [1, 256]: by default 1/256 and -128
(TFLite's int8 softmax output quantization); a QDQ model's own, e.g. onnxruntime's 1/255 and -128.
B = min(22, floor(log2((2^32 - 1) / n))), at least 16 (65535 * 2^16 < 2^32): the most bits the row allows,
so that the rounding matches a float softmax (onnxruntime's) on all but near-ties; e * L + sum // 2 <
2^30 + 2^31 also stays in uint32. ``s_in`` is the input scale times
softmax's beta. The table is built here and emitted as data, so C and numpy agree exactly.
This is not TFLite's softmax algorithm; results may differ from it by a few LSB.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_EXP_TABLE_BITS = 22  # e * 256 < 2^31
MAX_ROW_SIZE = 65535
OUTPUT_SCALE = 1.0 / 256.0
OUTPUT_ZERO_POINT = -128


@dataclass(frozen=True)
class SoftmaxParams:
    """mcuc_softmax_params_t plus the exp table passed alongside it."""

    rows: int
    row_size: int
    exp_table: np.ndarray  # uint32[256]
    out_levels: int = 256  # L: the output scale is 1/L
    out_zp: int = OUTPUT_ZERO_POINT


def exp_table_bits(row_size: int) -> int:
    """B: the most fraction bits for which a row of ``row_size`` entries of at most 2^B sums within uint32."""
    return min(MAX_EXP_TABLE_BITS, ((2**32 - 1) // int(row_size)).bit_length() - 1)


def make_exp_table(in_scale: float, beta: float = 1.0, bits: int = 16) -> np.ndarray:
    """uint32[256]: round(exp(-d * in_scale * beta) * 2^bits) for d = 0..255 (entry 0 is 2^bits)."""
    d = np.arange(256, dtype=np.float64)
    return np.rint(np.exp(-d * (in_scale * beta)) * (1 << bits)).astype(np.uint32)


def output_levels(out_scale: float) -> int | None:
    """L if ``out_scale`` is 1/L (to float32 precision) for an integer L in [1, 256], else None: the output
    scales mcuc_softmax_s8 computes exactly."""
    if not out_scale > 0:
        return None
    levels = round(1.0 / out_scale)
    return levels if 1 <= levels <= 256 and abs(out_scale * levels - 1.0) <= 1e-6 else None


def prepare_softmax(shape: tuple[int, ...], in_scale: float, beta: float = 1.0, out_scale: float = OUTPUT_SCALE,
                    out_zp: int = OUTPUT_ZERO_POINT) -> SoftmaxParams:
    """Softmax over the last axis of ``shape`` for input scale ``in_scale`` (the zero point cancels), output
    scale 1/L and zero point ``out_zp``."""
    levels = output_levels(out_scale)
    if levels is None or not -128 <= out_zp <= 127:
        raise ValueError(f"softmax output scale {out_scale:.6g} and zero point {out_zp}: the kernel needs a scale "
                         "1/L for an integer L in [1, 256] and a zero point in [-128, 127]")
    if not shape or shape[-1] < 1 or shape[-1] > MAX_ROW_SIZE:
        raise ValueError(f"softmax row size must be in [1, {MAX_ROW_SIZE}], shape {shape}")
    if not in_scale * beta > 0:
        raise ValueError("softmax needs a positive input scale * beta")
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    return SoftmaxParams(rows, int(shape[-1]), make_exp_table(in_scale, beta, exp_table_bits(shape[-1])),
                         levels, int(out_zp))


def softmax_s8(params: SoftmaxParams, x: np.ndarray) -> np.ndarray:
    """mcuc_softmax_s8 over the last axis of ``x``."""
    if x.shape[-1] != params.row_size or x.size != params.rows * params.row_size:
        raise ValueError(f"input shape {x.shape} does not match params")
    xi = x.astype(np.int64)
    d = xi.max(axis=-1, keepdims=True) - xi
    e = params.exp_table.astype(np.int64)[d]
    total = e.sum(axis=-1, keepdims=True)
    q = (e * params.out_levels + total // 2) // total + params.out_zp
    return np.minimum(q, 127).astype(np.int8)
