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


# ---- the boundaries: multipliers >= 1, the largest shifts, extreme accumulators ------------------------

_I32 = np.iinfo(np.int32)


def _boundary_cases() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (x, mult, shift) where x is an extreme of the int32 range a kernel may pass for that shift
    (x << max(shift, 0) fits int32: the domain the compiler accepts), or one step beyond it (which the
    compiler refuses, and where both sides must still wrap the same way)."""
    mults = [0, 1 << 30, (1 << 30) + 1, 3 << 29, (1 << 31) - 2, (1 << 31) - 1]
    xs, ms, ss = [], [], []
    for shift in range(-31, 31):
        left = max(shift, 0)
        hi, lo = _I32.max >> left, _I32.min >> left
        cands = {0, 1, -1, 2, -2, 3, -3, hi, hi - 1, lo, lo + 1, hi // 2, lo // 2, hi + 1, lo - 1,
                 _I32.max, _I32.min, 300_000_000, -300_000_000}
        for x in cands:
            if _I32.min <= x <= _I32.max:
                for m in mults:
                    xs.append(x)
                    ms.append(m)
                    ss.append(shift)
    return np.array(xs, np.int64), np.array(ms, np.int64), np.array(ss, np.int64)


def test_requantize_matches_c_at_the_boundaries():
    x, mult, shift = _boundary_cases()
    assert np.array_equal(multiply_by_quantized_multiplier(x, mult, shift), _c_requantize(x, mult, shift))


def test_requantize_matches_c_for_multipliers_of_at_least_one():
    rng = np.random.default_rng(3)
    n = 100_000
    reals = np.exp(rng.uniform(0.0, math.log(2.0**30), n))
    pairs = [quantize_multiplier(float(r)) for r in reals]
    mult = np.array([p[0] for p in pairs], dtype=np.int64)
    shift = np.array([p[1] for p in pairs], dtype=np.int64)
    assert shift.min() >= 1 and shift.max() == 30
    limit = _I32.max >> shift
    x = np.round(rng.uniform(-1, 1, n) * limit).astype(np.int64)
    assert np.array_equal(multiply_by_quantized_multiplier(x, mult, shift), _c_requantize(x, mult, shift))


def test_accumulator_3e8_with_multiplier_4_agrees():
    """The case that used to differ: Python computed 3e8 << 3 in int64 (-> +127), C wrapped it (-> -128)."""
    m, s = quantize_multiplier(4.0)
    x = np.array([300_000_000])
    assert multiply_by_quantized_multiplier(x, m, s).tolist() == _c_requantize(x, np.array([m]), np.array([s])).tolist()


def _fc_graph(bias0: int, w_value: int):
    """x [1, 8] -> fully_connected with requantization multiplier 0.5 * 0.08 / 0.01 = 4.0 (shift 3)."""
    from mcuc.ir import Graph, Node, QuantParams, Tensor

    g = Graph(layout="NHWC")
    g.add_tensor(Tensor("x", (1, 8), "int8", QuantParams(np.array([0.5]), np.array([0]))))
    w = g.const("w", np.full((2, 8), w_value, np.int8), QuantParams(np.array([0.08, 0.08]), np.zeros(2), axis=0))
    b = g.const("b", np.array([bias0, 0], np.int32))
    g.add_tensor(Tensor("y", (1, 2), "int8", QuantParams(np.array([0.01]), np.array([0]))))
    g.nodes.append(Node("fully_connected", "fc_wide", ["x", w, b], ["y"], {"act_min": -128, "act_max": 127}))
    g.inputs, g.outputs = ["x"], ["y"]
    return g


def test_multiplier_that_could_overflow_is_refused_at_compile_time():
    from mcuc.errors import MCUCError
    from mcuc.ops import verify

    verify(_fc_graph(bias0=1000, w_value=3), quantized=True)  # |acc| <= 1000 + 8*3*128: x8 fits int32
    with pytest.raises(MCUCError) as e:
        verify(_fc_graph(bias0=300_000_000, w_value=3), quantized=True)  # 3e8 << 3 does not
    msg = str(e.value)
    assert "fc_wide" in msg and "output channel 0" in msg and "re-quantize" in msg and "\n" not in msg
