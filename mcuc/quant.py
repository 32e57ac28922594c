"""TFLite-compatible fixed-point arithmetic shared by the reference interpreter and codegen.

The C side of every function here lives in mcuc/runtime_c/include/mcuc_support.h and must
produce identical integers; tests/test_fixedpoint.py checks both against each other.
"""
from __future__ import annotations

import math

import numpy as np

from mcuc.errors import MCUCError

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


class FixedPointRangeError(MCUCError, ValueError):
    """A real multiplier 32-bit fixed point cannot hold: the scales of one op are out of proportion (or not finite).

    A user error (the model's quantization parameters), reported on one line with the op that needs it.
    """


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Split a positive real multiplier into (int32 mantissa in [2^30, 2^31), shift).

    real ~= mantissa * 2^(shift - 31). Follows TFLite's QuantizeMultiplier: frexp, round
    the mantissa to 31 bits, renormalise when rounding reaches 2^31, flush tiny values to 0.
    """
    if real == 0.0:
        return 0, 0
    if real < 0 or not math.isfinite(real):
        raise FixedPointRangeError(f"requantization multiplier {real} is not finite and >= 0; the quantization "
                                   "scales are invalid")
    mant, shift = math.frexp(real)
    q = int(round(mant * (1 << 31)))
    if q == (1 << 31):
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise FixedPointRangeError(f"requantization multiplier {real:.4g} is too large for int32 fixed point "
                                   "(at most 2^30); the op's input, weight and output scales are out of proportion")
    return q, shift


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).reshape(-1)]
    return (np.array([p[0] for p in pairs], dtype=np.int32),
            np.array([p[1] for p in pairs], dtype=np.int32))


def _trunc_div_pow2(x: np.ndarray, bits: int) -> np.ndarray:
    """Integer division by 2^bits rounding toward zero (C semantics), on int64."""
    q = np.abs(x) >> bits
    return np.where(x < 0, -q, q)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values held in int64 arrays."""
    a64 = np.asarray(a, dtype=np.int64)
    b64 = np.asarray(b, dtype=np.int64)
    ab = a64 * b64
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    res = _trunc_div_pow2(ab + nudge, 31)
    overflow = (a64 == INT32_MIN) & (b64 == INT32_MIN)
    return np.where(overflow, np.int64(INT32_MAX), res)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent, rounding half away from zero."""
    x64 = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0).astype(np.int64)
    return (x64 >> e) + (remainder > threshold).astype(np.int64)


def multiply_by_quantized_multiplier(x: np.ndarray, mult: np.ndarray | int,
                                     shift: np.ndarray | int) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier; x, mult, shift broadcast; returns int64 array.

    A positive shift is applied in 32-bit two's complement, wrapping exactly as the C helper
    mcuc_requantize does, so the two agree on every int32 input. A wrapped value is garbage in
    both: the compiler refuses any layer whose accumulator bound times 2^shift could leave int32
    (mcuc.quant.requantize_headroom_violations), and every kernel's prepare_* keeps it inside.
    """
    x64 = np.asarray(x, dtype=np.int64)
    sh = np.asarray(shift, dtype=np.int64)
    left = np.maximum(sh, 0)
    right = np.maximum(-sh, 0)
    shifted = x64 * (np.int64(1) << left)
    if np.any(left > 0):
        wrapped = ((shifted + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        shifted = np.where(left > 0, wrapped, shifted)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, mult), right)


def requantize_headroom_violations(acc_lo: np.ndarray, acc_hi: np.ndarray,
                                   shift: np.ndarray) -> np.ndarray:
    """Indices of channels whose accumulator range [acc_lo, acc_hi] shifted left by max(shift, 0)
    leaves int32, where mcuc_requantize's left shift wraps (TFLite leaves it undefined)."""
    left = np.maximum(np.asarray(shift, dtype=np.int64), 0)
    lo = np.asarray(acc_lo, dtype=np.int64) * (np.int64(1) << left)
    hi = np.asarray(acc_hi, dtype=np.int64) * (np.int64(1) << left)
    return np.flatnonzero((lo < INT32_MIN) | (hi > INT32_MAX))


def requantize(acc: np.ndarray, mult: np.ndarray | int, shift: np.ndarray | int, out_zp: int,
               act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """int32 accumulator -> int8: scale by the fixed-point multiplier, add zp, clamp."""
    y = multiply_by_quantized_multiplier(acc, mult, shift) + out_zp
    return np.clip(y, act_min, act_max).astype(np.int8)


def quantize_array(x: np.ndarray, scale: float, zp: int, dtype: str = "int8") -> np.ndarray:
    """Float -> integer with round-half-to-even (as numpy/onnxruntime) and saturation."""
    info = np.iinfo(dtype)
    q = np.rint(np.asarray(x, dtype=np.float64) / scale) + zp
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_array(q: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return ((q.astype(np.float64) - zp) * scale).astype(np.float32)


def choose_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 parameters covering [lo, hi] (range always includes 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zp = int(round(-128 - lo / scale))
    return scale, int(np.clip(zp, -128, 127))


def activation_range(kind: str | None, scale: float, zp: int,
                     lo: float | None = None, hi: float | None = None) -> tuple[int, int]:
    """Quantized clamp bounds for a fused activation ('relu', 'clip' with lo/hi, or None); a bound beyond the
    int8 range (an infinite one included) clamps to it."""

    def bound(v: float) -> int:
        r = v / scale
        if not math.isfinite(r):
            return -128 if r < 0 else 127
        return int(min(max(zp + round(r), -128), 127))

    qmin, qmax = -128, 127
    if kind == "relu":
        qmin = max(qmin, zp)
    elif kind == "clip":
        if lo is not None:
            qmin = max(qmin, bound(lo))
        if hi is not None:
            qmax = min(qmax, bound(hi))
    return qmin, qmax
