"""Integer-exact int8 elementwise ops (add, sub, mul, prelu, LUT, requantize): prepare + numpy reference.

Each ``prepare_*`` turns float quantization parameters into the integer parameters of the C
kernel (mcuc/runtime_c/include/mcuc_elementwise.h); each ``*_s8`` function computes exactly what the C
kernel computes, vectorised over whole tensors.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mcuc.quant import multiply_by_quantized_multiplier, quantize_multiplier

ADD_LEFT_SHIFT = 20  # TFLite's left shift for int8 ADD/SUB


def _check_zp(zp: int) -> None:
    if not -128 <= zp <= 127:
        raise ValueError(f"int8 zero point out of range: {zp}")


def _check_act(act_min: int, act_max: int) -> None:
    if not -128 <= act_min <= act_max <= 127:
        raise ValueError(f"bad activation range [{act_min}, {act_max}]")


@dataclass(frozen=True)
class BroadcastShape:
    """mcuc_broadcast_params_t: 4-D output dims and per-input element strides (0 on broadcast axes)."""

    out_dims: tuple[int, int, int, int]
    in1_strides: tuple[int, int, int, int]
    in2_strides: tuple[int, int, int, int]


def _to_4d(shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    while len(shape) > 4 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) > 4:
        raise ValueError(f"elementwise kernels support up to 4-D tensors, got {shape}")
    return (1,) * (4 - len(shape)) + shape


def _broadcast_strides(shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int, int, int]:
    strides = [0, 0, 0, 0]
    step = 1
    for ax in range(3, -1, -1):
        if shape[ax] != 1:
            if shape[ax] != out[ax]:
                raise ValueError(f"shape {shape} does not broadcast to {out}")
            strides[ax] = step
        step *= shape[ax]
    return (strides[0], strides[1], strides[2], strides[3])


def prepare_broadcast(shape1: tuple[int, ...], shape2: tuple[int, ...]) -> BroadcastShape:
    """Numpy broadcasting of two shapes of rank <= 4 (extra leading 1s are dropped)."""
    out = tuple(int(d) for d in np.broadcast_shapes(tuple(shape1), tuple(shape2)))
    out4, s1, s2 = _to_4d(out), _to_4d(tuple(shape1)), _to_4d(tuple(shape2))
    return BroadcastShape((out4[0], out4[1], out4[2], out4[3]),
                          _broadcast_strides(s1, out4), _broadcast_strides(s2, out4))


@dataclass(frozen=True)
class AddParams:
    """struct mcuc_add_sub_params (mcuc_add_params_t, mcuc_sub_params_t, mcuc_squared_difference_params_t)."""

    in1_offset: int
    in2_offset: int
    out_offset: int
    left_shift: int
    in1_mult: int
    in1_shift: int
    in2_mult: int
    in2_shift: int
    out_mult: int
    out_shift: int
    act_min: int = -128
    act_max: int = 127


def prepare_add(s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int,
                act_min: int = -128, act_max: int = 127) -> AddParams:
    """TFLite int8 ADD/SUB preparation: inputs rescaled to 2*max(s1, s2) with 20 bits headroom."""
    for zp in (zp1, zp2, zp_out):
        _check_zp(zp)
    _check_act(act_min, act_max)
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * s_out))
    if sho > 0:
        raise ValueError(f"add/sub output scale {s_out} too small for inputs {s1}, {s2}")
    return AddParams(-zp1, -zp2, zp_out, ADD_LEFT_SHIFT, m1, sh1, m2, sh2, mo, sho, act_min, act_max)


prepare_sub = prepare_add


def _add_sub_formula(q1: np.ndarray, q2: np.ndarray, p: AddParams, sign: int) -> np.ndarray:
    """TFLite AddElementwise / SubElementwise on int8 values (any broadcastable shapes)."""
    x1 = (q1.astype(np.int64) + p.in1_offset) << p.left_shift
    x2 = (q2.astype(np.int64) + p.in2_offset) << p.left_shift
    v1 = multiply_by_quantized_multiplier(x1, p.in1_mult, p.in1_shift)
    v2 = multiply_by_quantized_multiplier(x2, p.in2_mult, p.in2_shift)
    raw = multiply_by_quantized_multiplier(v1 + sign * v2, p.out_mult, p.out_shift) + p.out_offset
    return np.clip(raw, p.act_min, p.act_max).astype(np.int8)


_Q_ROW = np.arange(-128, 128, dtype=np.int64)[:, None]
_Q_COL = np.arange(-128, 128, dtype=np.int64)[None, :]


def _apply_pair_table(table: np.ndarray, in1: np.ndarray, in2: np.ndarray) -> np.ndarray:
    """out = table[q1 + 128, q2 + 128] with numpy broadcasting.

    An int8 binary op has only 65536 distinct input pairs, so evaluating the formula once per
    pair and indexing is exact and keeps the reference fast on large activations.
    """
    return np.asarray(table[in1.astype(np.intp) + 128, in2.astype(np.intp) + 128])


def add_tables(p: AddParams, sign: int) -> np.ndarray:
    """mcuc_add_simd_s8's tables: v1(q) then sign * v2(q) for q = -128..127, int32 [512] (the rescaled inputs
    of _add_sub_formula; |v| < 2^28, so the sum and the negation are exact)."""
    q = np.arange(-128, 128, dtype=np.int64)
    v1 = multiply_by_quantized_multiplier((q + p.in1_offset) << p.left_shift, p.in1_mult, p.in1_shift)
    v2 = multiply_by_quantized_multiplier((q + p.in2_offset) << p.left_shift, p.in2_mult, p.in2_shift)
    return np.concatenate([v1, sign * v2]).astype(np.int32)


def add_tables_s8(p: AddParams, tables: np.ndarray, in1: np.ndarray, in2: np.ndarray) -> np.ndarray:
    """mcuc_add_simd_s8 on numpy arrays: the table look-ups, then the output requantization."""
    acc = tables[in1.astype(np.intp) + 128].astype(np.int64) + tables[in2.astype(np.intp) + 384]
    raw = multiply_by_quantized_multiplier(acc, p.out_mult, p.out_shift) + p.out_offset
    return np.clip(raw, p.act_min, p.act_max).astype(np.int8)


def add_s8(params: AddParams, in1: np.ndarray, in2: np.ndarray) -> np.ndarray:
    """mcuc_add_s8 with numpy broadcasting (TFLite AddElementwise per element)."""
    return _apply_pair_table(_add_sub_formula(_Q_ROW, _Q_COL, params, 1), in1, in2)


def sub_s8(params: AddParams, in1: np.ndarray, in2: np.ndarray) -> np.ndarray:
    """mcuc_sub_s8 with numpy broadcasting (TFLite SubElementwise per element)."""
    return _apply_pair_table(_add_sub_formula(_Q_ROW, _Q_COL, params, -1), in1, in2)


@dataclass(frozen=True)
class MulParams:
    """mcuc_mul_params_t."""

    in1_offset: int
    in2_offset: int
    out_offset: int
    out_mult: int
    out_shift: int
    act_min: int = -128
    act_max: int = 127


def prepare_mul(s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int,
                act_min: int = -128, act_max: int = 127) -> MulParams:
    """TFLite int8 MUL preparation: one multiplier s1*s2/s_out on the product of offsets."""
    for zp in (zp1, zp2, zp_out):
        _check_zp(zp)
    _check_act(act_min, act_max)
    m, sh = quantize_multiplier(s1 * s2 / s_out)
    if sh > 15:
        raise ValueError(f"mul rescale {s1 * s2 / s_out} too large (product << shift overflows int32)")
    return MulParams(-zp1, -zp2, zp_out, m, sh, act_min, act_max)


def mul_s8(params: MulParams, in1: np.ndarray, in2: np.ndarray) -> np.ndarray:
    """mcuc_mul_s8 with numpy broadcasting (TFLite MulElementwise per element)."""
    p = params
    prod = (_Q_ROW + p.in1_offset) * (_Q_COL + p.in2_offset)
    raw = multiply_by_quantized_multiplier(prod, p.out_mult, p.out_shift) + p.out_offset
    return _apply_pair_table(np.clip(raw, p.act_min, p.act_max).astype(np.int8), in1, in2)


@dataclass(frozen=True)
class RequantizeParams:
    """mcuc_requantize_params_t: ``size`` elements, out = clamp(out_zp + MBQM(q - in_zp, mult, shift))."""

    size: int
    in_zp: int
    out_zp: int
    mult: int
    shift: int


MAX_REQUANT_SHIFT = 23  # 255 << 23 still fits int32


def prepare_requantize(shape: tuple[int, ...], s_in: float, zp_in: int, s_out: float,
                       zp_out: int) -> RequantizeParams:
    _check_zp(zp_in)
    _check_zp(zp_out)
    m, sh = quantize_multiplier(s_in / s_out)
    if sh > MAX_REQUANT_SHIFT:
        raise ValueError(f"requantize ratio {s_in / s_out} too large for int32 fixed point")
    return RequantizeParams(int(np.prod(shape, dtype=np.int64)), zp_in, zp_out, m, sh)


def requantize_values(x: np.ndarray, in_zp: int, out_zp: int, mult: int, shift: int) -> np.ndarray:
    """clamp(out_zp + MBQM(x - in_zp, mult, shift)) of int8 ``x``: requantize's and concat's arithmetic."""
    q = np.arange(-128, 128, dtype=np.int64)
    table = np.clip(multiply_by_quantized_multiplier(q - in_zp, mult, shift) + out_zp, -128, 127)
    return table.astype(np.int8)[x.astype(np.intp) + 128]  # exact: one entry per int8 value


def requantize_s8(params: RequantizeParams, x: np.ndarray) -> np.ndarray:
    """mcuc_requantize_s8: int8 -> int8 with new scale and zero point (TFLite Requantize)."""
    p = params
    return requantize_values(x, p.in_zp, p.out_zp, p.mult, p.shift)


@dataclass(frozen=True)
class PreluParams:
    """mcuc_prelu_params_t (TFLite int8 PRELU): x - zp_in >= 0 is requantized by pos (s_in / s_out), below it
    the product (x - zp_in) * (alpha - zp_alpha) by neg (s_in * s_alpha / s_out); then + out_offset, clamped."""

    in_offset: int
    alpha_offset: int
    out_offset: int
    pos_mult: int
    pos_shift: int
    neg_mult: int
    neg_shift: int


def prepare_prelu(s_in: float, zp_in: int, s_alpha: float, zp_alpha: int, s_out: float, zp_out: int) -> PreluParams:
    """TFLite CalculatePreluParams (double-precision ratios of the float scales, QuantizeMultiplier)."""
    for zp in (zp_in, zp_alpha, zp_out):
        _check_zp(zp)
    m1, sh1 = quantize_multiplier(s_in / s_out)
    m2, sh2 = quantize_multiplier(s_in * s_alpha / s_out)
    if sh1 > MAX_REQUANT_SHIFT or sh2 > 15:
        raise ValueError(f"prelu output scale {s_out} too small for input scale {s_in} and slope scale {s_alpha} "
                         "(the shifted products overflow int32)")
    return PreluParams(-zp_in, -zp_alpha, zp_out, m1, sh1, m2, sh2)


def prelu_s8(params: PreluParams, x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """mcuc_prelu_s8 with numpy broadcasting of ``alpha`` (TFLite reference BroadcastPrelu4DSlow per element)."""
    p = params
    xv = _Q_ROW + p.in_offset
    pos = multiply_by_quantized_multiplier(np.broadcast_to(xv, (256, 256)), p.pos_mult, p.pos_shift)
    neg = multiply_by_quantized_multiplier(xv * (_Q_COL + p.alpha_offset), p.neg_mult, p.neg_shift)
    table = np.clip(np.where(xv >= 0, pos, neg) + p.out_offset, -128, 127).astype(np.int8)
    return _apply_pair_table(table, x, alpha)


def make_lut(fn: Callable[[np.ndarray], np.ndarray], in_scale: float, in_zp: int, out_scale: float,
             out_zp: int) -> np.ndarray:
    """int8[256] table: entry q+128 = clamp(round_half_even(fn((q - in_zp) * in_scale) / out_scale) + out_zp).

    ``fn`` is evaluated in float64 on the 256 representable inputs; the table is emitted as
    data, so the C kernel and the reference agree by construction.
    """
    _check_zp(in_zp)
    _check_zp(out_zp)
    q = np.arange(-128, 128, dtype=np.int64)
    real = np.asarray(fn((q - in_zp).astype(np.float64) * in_scale), dtype=np.float64)
    y = np.rint(real / out_scale) + out_zp
    return np.clip(y, -128, 127).astype(np.int8)


def lut_s8(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """mcuc_lut_s8: output = table[x + 128]."""
    if table.shape != (256,) or table.dtype != np.int8:
        raise ValueError("LUT must be int8[256]")
    return table[x.astype(np.int64) + 128]
