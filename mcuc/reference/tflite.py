"""TFLite's own int8 integer algorithms, for .tflite models: look-up tables and a softmax that match TFLM bit for bit.

For a .tflite model mcuc keeps the model's numerics. Where TFLite's int8 kernel is a function of one input
value (LOGISTIC, TANH, HARD_SWISH, GELU, RSQRT), the 256 outputs are computed here once by replicating TFLite
Micro's reference arithmetic (gemmlowp fixed point, int16 hard-swish) and the op runs as an mcuc LUT.
Softmax needs the whole row; ``softmax_tflite_s8`` is TFLM's reference int8 softmax (gemmlowp exp on Q5.26,
Q12.19 accumulation, Newton-Raphson reciprocal), mirrored by mcuc/runtime_c/src/mcuc_softmax_tflite_s8.c.
MEAN keeps our kernel with TFLM's multiplier (``tflite_mean_multiplier``).

Values are int64 numpy arrays holding int32 quantities; every helper reproduces the int32 C semantics of
gemmlowp/TFLite (saturation where they saturate, two's complement wrap where they wrap).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mcuc.quant import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
)
from mcuc.reference.elementwise import AddParams

I64 = np.int64


def _wrap32(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, I64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 (the fixed-point product)."""
    a64, b64 = np.asarray(a, I64), np.asarray(b, I64)
    ab = a64 * b64
    nudge = np.where(ab >= 0, I64(1 << 30), I64(1 - (1 << 30)))
    q = np.abs(ab + nudge) >> 31
    res = np.where(ab + nudge < 0, -q, q)
    return np.where((a64 == INT32_MIN) & (b64 == INT32_MIN), I64(INT32_MAX), res)


def sat_mul_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>."""
    x = np.asarray(x, I64)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    return np.clip(x << exponent, INT32_MIN, INT32_MAX)


def rescale(x: np.ndarray, src_int_bits: int, dst_int_bits: int) -> np.ndarray:
    return sat_mul_pot(x, src_int_bits - dst_int_bits)


def _exp_quarter(a: np.ndarray) -> np.ndarray:
    """exp(x) for x in [-1/4, 0), Q0.31 in and out."""
    constant_term, one_third = 1895147668, 715827883
    x = _wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = sat_mul_pot(x4, -2)
    poly = sat_mul_pot(_wrap32(srdhm(_wrap32(x4_over_4 + x3), one_third) + x2), -1)
    return _wrap32(constant_term + srdhm(constant_term, _wrap32(x + poly)))


def exp_on_negative_values(a: np.ndarray, int_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: Q(int_bits) input <= 0 -> Q0.31 output."""
    a = np.asarray(a, I64)
    frac = 31 - int_bits
    one_quarter = 1 << (frac - 2)
    mask = one_quarter - 1
    a_mod = _wrap32((a & mask) - one_quarter)
    result = _exp_quarter(rescale(a_mod, int_bits, 0))
    remainder = _wrap32(a_mod - a)
    for exponent, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
                           (3, 720401), (4, 242)):
        if int_bits > exponent:
            bit = 1 << (frac + exponent)
            result = np.where((remainder & bit) != 0, srdhm(result, mult), result)
    if int_bits > 5:
        result = np.where(a < -(1 << (36 - int_bits)), I64(0), result)
    return np.where(a == 0, I64(INT32_MAX), result)


def _newton_reciprocal_f2(half_denominator: np.ndarray) -> np.ndarray:
    """Q2.29 approximation of 1 / half_denominator (three Newton-Raphson steps, as gemmlowp)."""
    x = _wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = _wrap32((1 << 29) - srdhm(half_denominator, x))
        x = _wrap32(x + rescale(srdhm(x, one_minus), 4, 2))
    return x


def _rounding_half_sum(a: np.ndarray, b: int) -> np.ndarray:
    s = np.asarray(a, I64) + b
    sign = np.where(s >= 0, 1, -1)
    t = s + sign
    return np.where(t < 0, -((-t) // 2), t // 2)


def one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 -> Q0.31."""
    x = _newton_reciprocal_f2(_rounding_half_sum(a, INT32_MAX))
    return rescale(x, 1, 0)  # ExactMulByPot<-1> then Rescale<0>


def one_minus_x_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    x = _newton_reciprocal_f2(_rounding_half_sum(a, INT32_MAX))
    return rescale(_wrap32(x - (1 << 29)), 2, 0)


def fixed_logistic(a: np.ndarray, int_bits: int) -> np.ndarray:
    a = np.asarray(a, I64)
    pos = a > 0
    abs_in = np.where(pos, a, _wrap32(-a))
    r_pos = one_over_one_plus_x(exp_on_negative_values(_wrap32(-abs_in), int_bits))
    r_neg = _wrap32(INT32_MAX - r_pos)
    return np.where(a == 0, I64(1 << 30), np.where(pos, r_pos, r_neg))


def fixed_tanh(a: np.ndarray, int_bits: int) -> np.ndarray:
    a = np.asarray(a, I64)
    neg = a < 0
    n = np.where(neg, a, _wrap32(-a))
    t = one_minus_x_over_one_plus_x(exp_on_negative_values(n, int_bits + 1))
    return np.where(a == 0, I64(0), np.where(neg, _wrap32(-t), t))


def _frexp_multiplier(real: float) -> tuple[int, int]:
    """std::frexp + TfLiteRound(q * 2^31), without QuantizeMultiplier's renormalisation (as TFLM's tanh/logistic)."""
    q, shift = math.frexp(real)
    return int(math.floor(abs(q) * (1 << 31) + 0.5)) * (1 if q >= 0 else -1), shift


def input_radius(int_bits: int, left_shift: int, total_bits: int = 31) -> int:
    """TFLite CalculateInputRadius."""
    return int(math.floor(1.0 * ((1 << int_bits) - 1) * (1 << (total_bits - int_bits)) / (1 << left_shift)))


_Q = np.arange(-128, 128, dtype=I64)


def logistic_table(in_scale: float, in_zp: int) -> np.ndarray:
    """int8[256] of TFLM's reference int8 LOGISTIC (output scale 1/256, zero point -128)."""
    mult, shift = _frexp_multiplier(float(np.float32(in_scale)) * (1 << 27))
    radius = input_radius(4, shift)
    x = _Q - in_zp
    q4 = multiply_by_quantized_multiplier(x, mult, shift)
    out = rounding_divide_by_pot(fixed_logistic(q4, 4), 23) - 128
    out = np.clip(out, -128, 127)
    out = np.where(x <= -radius, -128, np.where(x >= radius, 127, out))
    return out.astype(np.int8)


def tanh_table(in_scale: float, in_zp: int) -> np.ndarray:
    """int8[256] of TFLM's reference int8 TANH (output scale 1/128, zero point 0)."""
    mult, shift = _frexp_multiplier(float(np.float32(in_scale)) * (1 << 27))
    radius = input_radius(4, shift)
    x = _Q - in_zp
    q4 = multiply_by_quantized_multiplier(x, mult, shift)
    out = np.clip(rounding_divide_by_pot(fixed_tanh(q4, 4), 24), -128, 127)
    out = np.where(x <= -radius, -128, np.where(x >= radius, 127, out))
    return out.astype(np.int8)


def _srdhm16(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    a64, b64 = np.asarray(a, I64), np.asarray(b, I64)
    ab = a64 * b64
    nudge = np.where(ab >= 0, I64(1 << 14), I64(1 - (1 << 14)))
    t = ab + nudge
    q = np.where(t < 0, -((-t) >> 15), t >> 15)
    q = ((q + (1 << 15)) & 0xFFFF) - (1 << 15)
    return np.where((a64 == -32768) & (b64 == -32768), I64(32767), q)


def _sdhm16(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    a64, b64 = np.asarray(a, I64), np.asarray(b, I64)
    ab = a64 * b64
    q = np.where(ab < 0, -((-ab) >> 15), ab >> 15)
    q = ((q + (1 << 15)) & 0xFFFF) - (1 << 15)
    return np.where((a64 == -32768) & (b64 == -32768), I64(32767), q)


def _sat_left_shift16(x: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(np.asarray(x, I64) * (1 << amount), -32768, 32767)


def _int16_multiplier(real: float) -> tuple[int, int]:
    m32, exp = quantize_multiplier(real)
    if m32 >= INT32_MAX - (1 << 15):
        return 32767, exp
    return (m32 + (1 << 15)) >> 16, exp


def hard_swish_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """int8[256] of TFLM's reference int8 HARD_SWISH (int16 fixed point, float32 prepare)."""
    f32 = np.float32
    hires = f32(1.0 / 128.0) * f32(in_scale)
    out_m, out_e = _int16_multiplier(float(hires / f32(out_scale)))
    rel_m, rel_e = _int16_multiplier(float(hires / f32(3.0 / 32768.0)))
    if out_e > 0:
        raise ValueError(f"hard_swish output scale {out_scale} too small for input scale {in_scale}")
    x = _Q - in_zp
    hires_v = x * 128
    pre_out = _srdhm16(hires_v, out_m)
    rel = hires_v
    if rel_e > 0:
        rel = _sat_left_shift16(rel, rel_e - 1)
    rel = _srdhm16(rel, rel_m)
    if rel_e > 0:
        rel = _sat_left_shift16(rel, 1)
    if rel_e < 0:
        rel = rounding_divide_by_pot(rel, -rel_e)
    rel = (rel + (1 << 15)) >> 1
    pre = _sdhm16(rel, pre_out)
    out = rounding_divide_by_pot(pre, -out_e) + out_zp
    return np.clip(out, -128, 127).astype(np.int8)


def _signed_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier for a multiplier of either sign (frexp keeps the sign in the mantissa)."""
    from mcuc.quant import quantize_multiplier

    if real >= 0:
        return quantize_multiplier(real)
    q, shift = math.frexp(real)  # q in (-1, -0.5]: rounds to at most -2^31 in magnitude, which int32 holds
    if shift < -31:
        return 0, 0
    return -int(math.floor(-q * (1 << 31) + 0.5)), shift


def leaky_relu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, alpha: float) -> np.ndarray:
    """int8[256] of TFLM's int8 LEAKY_RELU: q - zp_in >= 0 is requantized by s_in / s_out, below by
    s_in * alpha / s_out (both float32 products, QuantizeMultiplier, MultiplyByQuantizedMultiplier), plus zp_out,
    clamped."""
    f32 = np.float32
    ident = _signed_multiplier(float(f32(in_scale) / f32(out_scale)))
    slope = _signed_multiplier(float(f32(in_scale) * f32(alpha) / f32(out_scale)))
    x = _Q - in_zp
    out = np.where(x >= 0, multiply_by_quantized_multiplier(x, *ident), multiply_by_quantized_multiplier(x, *slope))
    return np.clip(out + out_zp, -128, 127).astype(np.int8)


def float_table(fn, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """TFLite LUTPopulate: float32 dequantize, ``fn``, multiply by 1/out_scale, round half away from zero."""
    f32 = np.float32
    deq = f32(in_scale) * (_Q - in_zp).astype(np.float32)
    y = np.asarray(fn(deq), dtype=np.float32) * (f32(1.0) / f32(out_scale))
    r = np.where(y >= 0, np.floor(y + f32(0.5)), np.ceil(y - f32(0.5)))
    return np.clip(r.astype(np.int64) + out_zp, -128, 127).astype(np.int8)


def gelu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, approximate: bool = False) -> np.ndarray:
    """int8[256] of LiteRT's int8 GELU (a table of the float function, as its reference kernel builds)."""
    def gelu(x: np.ndarray) -> np.ndarray:
        x64 = x.astype(np.float64)
        if approximate:
            y = 0.5 * x64 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64 ** 3)))
        else:
            y = 0.5 * x64 * (1.0 + np.vectorize(math.erf)(x64 / math.sqrt(2.0)))
        return y.astype(np.float32)

    return float_table(gelu, in_scale, in_zp, out_scale, out_zp)


def _inv_sqrt_multiplier(value: int) -> tuple[int, int]:
    """TFLite GetInvSqrtQuantizedMultiplierExp(value, kReverseShift = -1): 1/sqrt(value) as (multiplier, shift)."""
    if value <= 1:
        return INT32_MAX, 0
    shift = 11
    while value >= (1 << 29):
        value //= 4
        shift += 1
    pairs = ((32 - value.bit_length()) - 1) // 2 - 1
    shift -= pairs
    value <<= 2 * pairs
    x_in = np.array([value >> 1], I64)
    half_in = sat_mul_pot(x_in, -1)
    half_three = np.array([(1 << 28) + (1 << 27)], I64)
    x = np.array([1 << 28], I64)
    for _ in range(5):
        x3 = sat_mul_pot(srdhm(srdhm(x, x), x), 6)
        x = sat_mul_pot(_wrap32(srdhm(half_three, x) - srdhm(half_in, x3)), 3)
    inv = int(srdhm(x, 1518500250)[0])
    if shift < 0:
        inv = int(_wrap32(np.array([inv << -shift]))[0])
        shift = 0
    return inv, -shift


def rsqrt_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """int8[256] of TFLM's int8 RSQRT (inputs below the zero point, which TFLM rejects, give 127)."""
    f32 = np.float32
    mult, shift = quantize_multiplier(1.0 / float(f32(np.sqrt(f32(in_scale))) * f32(out_scale)))
    out = []
    for q in range(-128, 128):
        value = q - in_zp
        if value <= 0:
            out.append(127)
            continue
        m, s = _inv_sqrt_multiplier(value)
        data = int(multiply_by_quantized_multiplier(np.array([1]), m, s + 20)[0])
        y = int(multiply_by_quantized_multiplier(np.array([data]), mult, shift - 20)[0]) + out_zp
        out.append(min(max(y, -128), 127))
    return np.array(out, dtype=np.int8)


def prepare_squared_difference(s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int,
                               act_min: int = -128, act_max: int = 127):
    """TFLM SQUARED_DIFFERENCE int8 preparation (left shift 7): mcuc_squared_difference_params_t, the add/sub layout."""
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max * twice_max / ((1 << 14) * s_out))
    return AddParams(-zp1, -zp2, zp_out, 7, m1, sh1, m2, sh2, mo, sho, act_min, act_max)


def squared_difference_s8(p, in1: np.ndarray, in2: np.ndarray) -> np.ndarray:
    """mcuc_squared_difference_s8 with numpy broadcasting (TFLM SquaredDifference per element)."""
    x1 = (in1.astype(I64) + p.in1_offset) << p.left_shift
    x2 = (in2.astype(I64) + p.in2_offset) << p.left_shift
    d = multiply_by_quantized_multiplier(x1, p.in1_mult, p.in1_shift) - multiply_by_quantized_multiplier(
        x2, p.in2_mult, p.in2_shift)
    raw = multiply_by_quantized_multiplier(_wrap32(d * d), p.out_mult, p.out_shift) + p.out_offset
    return np.clip(raw, p.act_min, p.act_max).astype(np.int8)


def tflite_mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """TFLM QuantizedMeanOrSum: QuantizeMultiplier(s_in / s_out), then fold 1/count in by an integer division."""
    mult, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    s = int(count).bit_length() - 1
    s = min(s, 32, 31 + shift)
    mult = int((mult << s) // count)
    return mult, shift - s


# ---- softmax ---------------------------------------------------------------------------------------------

SCALED_DIFF_INT_BITS = 5
ACCUM_INT_BITS = 12


@dataclass(frozen=True)
class SoftmaxTfliteParams:
    """mcuc_softmax_tflite_params_t: TFLite's int8 softmax over rows of ``row_size`` (output 1/256, -128)."""

    rows: int
    row_size: int
    input_multiplier: int
    input_left_shift: int
    diff_min: int


def prepare_softmax_tflite(shape: tuple[int, ...], in_scale: float, beta: float = 1.0) -> SoftmaxTfliteParams:
    """TFLite PreprocessSoftmaxScaling + CalculateInputRadius for int8 input with 5 integer bits."""
    real = min(float(beta) * float(np.float32(in_scale)) * (1 << (31 - SCALED_DIFF_INT_BITS)), (1 << 31) - 1.0)
    mult, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError(f"softmax input scale {in_scale} too small for TFLite's int8 softmax")
    if not shape or not 1 <= int(shape[-1]) <= 4096:
        raise ValueError(f"softmax row size must be in [1, 4096] (the Q12.19 row sum), shape {shape}")
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    return SoftmaxTfliteParams(rows, int(shape[-1]), mult, shift, -input_radius(SCALED_DIFF_INT_BITS, shift))


def _reciprocal(x: np.ndarray, int_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetReciprocal on positive int32 sums: (Q0.31 scale, num_bits_over_unit)."""
    x = np.asarray(x, I64)
    headroom_plus_one = 32 - np.array([int(v).bit_length() for v in x.reshape(-1)], dtype=I64).reshape(x.shape)
    bits_over_unit = int_digits - headroom_plus_one
    shifted = _wrap32(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x(shifted), bits_over_unit


def softmax_tflite_s8(params: SoftmaxTfliteParams, x: np.ndarray) -> np.ndarray:
    """TFLite/TFLM reference int8 softmax over the last axis (mcuc_softmax_tflite_s8)."""
    p = params
    if x.shape[-1] != p.row_size or x.size != p.rows * p.row_size:
        raise ValueError(f"input shape {x.shape} does not match params")
    q = x.reshape(p.rows, p.row_size).astype(I64)
    diff = q - q.max(axis=1, keepdims=True)
    live = diff >= p.diff_min
    scaled = srdhm(diff * (1 << p.input_left_shift), p.input_multiplier)
    e = exp_on_negative_values(scaled, SCALED_DIFF_INT_BITS)
    e_acc = rescale(e, 0, ACCUM_INT_BITS)
    total = _wrap32(np.where(live, e_acc, 0).sum(axis=1, keepdims=True))
    scale, bits = _reciprocal(total, ACCUM_INT_BITS)
    out = rounding_divide_by_pot(srdhm(scale, e), bits + 31 - 8) - 128
    out = np.where(live, np.clip(out, -128, 127), -128)
    return out.astype(np.int8).reshape(x.shape)
