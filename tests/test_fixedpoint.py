"""mcuc/quant.py and mcuc/runtime_c/include/mcuc_support.h compute identical integers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mcuc.quant import (
    choose_qparams,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
)
from tests.cbuild import RUNTIME, build_shared


def _c_requantize(x: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    import ctypes

    lib = build_shared([str(RUNTIME / "tests" / "fixedpoint_shim.c")])
    x32, m32, s32 = (np.ascontiguousarray(a, dtype=np.int32) for a in (x, mult, shift))
    out = np.zeros_like(x32)
    ptr = ctypes.POINTER(ctypes.c_int32)
    lib.mcuc_test_requantize_array(x32.ctypes.data_as(ptr), m32.ctypes.data_as(ptr), s32.ctypes.data_as(ptr),
                                   out.ctypes.data_as(ptr), ctypes.c_int32(x32.size))
    return out


def test_requantize_matches_c_on_random_values():
    rng = np.random.default_rng(1)
    n = 200_000
    reals = np.exp(rng.uniform(math.log(1e-6), math.log(60.0), n))
    pairs = [quantize_multiplier(float(r)) for r in reals]
    mult = np.array([p[0] for p in pairs], dtype=np.int64)
    shift = np.array([p[1] for p in pairs], dtype=np.int64)
    # keep x << max(shift, 0) inside int32, as every kernel guarantees
    limit = (2**31 - 1) >> np.maximum(shift, 0)
    x = (rng.uniform(-1, 1, n) * limit).astype(np.int64)
    x[:8] = [0, 1, -1, 2**31 - 1 >> 6, -(2**31) >> 6, 5, -5, 3]
    ref = multiply_by_quantized_multiplier(x, mult, shift)
    got = _c_requantize(x, mult, shift)
    assert np.array_equal(ref, got)


def test_requantize_rounding_ties_like_gemmlowp():
    # With shift 0 all rounding happens in the doubling high multiply, whose nudge rounds
    # ties upward (1.5 -> 2, -1.5 -> -1); a right shift rounds ties away from zero.
    m, s = quantize_multiplier(0.5)
    assert multiply_by_quantized_multiplier(np.array([3, -3, 1, -1]), m, s).tolist() == [2, -1, 1, 0]
    m, s = quantize_multiplier(0.25)
    assert s == -1
    assert multiply_by_quantized_multiplier(np.array([2, -2, 6, -6]), m, s).tolist() == [1, -1, 2, -2]


@pytest.mark.parametrize("real", [1e-7, 0.0003, 0.25, 0.5, 0.999999999, 1.0, 3.7, 1000.0])
def test_quantize_multiplier_accuracy(real):
    m, s = quantize_multiplier(real)
    assert 2**30 <= m < 2**31
    assert abs(m * 2.0 ** (s - 31) - real) <= real * 2.0**-30


def test_quantize_multiplier_zero_and_tiny():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1e-12) == (0, 0)


def test_choose_qparams_covers_zero_exactly():
    for lo, hi in [(-1.0, 1.0), (0.0, 6.0), (-3.0, -1.0), (2.0, 5.0)]:
        s, zp = choose_qparams(lo, hi)
        assert -128 <= zp <= 127
        assert abs((-128 - zp) * s - min(lo, 0.0)) <= s
        assert abs((127 - zp) * s - max(hi, 0.0)) <= s
