"""Non-convolution int8 kernels: C vs numpy reference parity, and reference vs float within 1 LSB."""
from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mcuc.quant import dequantize_array, quantize_array
from mcuc.reference.elementwise import (
    add_s8,
    lut_s8,
    make_lut,
    mul_s8,
    prepare_add,
    prepare_broadcast,
    prepare_mul,
    prepare_requantize,
    prepare_sub,
    requantize_s8,
    sub_s8,
)
from mcuc.reference.layout import (
    concat_s8,
    pad_s8,
    prepare_concat,
    prepare_pad,
    prepare_transpose,
    transpose_s8,
)
from mcuc.reference.pool import avgpool_s8, maxpool_s8, prepare_global_avgpool, prepare_pool
from mcuc.reference.softmax import OUTPUT_ZERO_POINT, prepare_softmax, softmax_s8
from tests.cbuild import build_shared

SOURCES = ["mcuc_add_s8", "mcuc_sub_s8", "mcuc_mul_s8", "mcuc_avgpool_s8", "mcuc_maxpool_s8", "mcuc_lut_s8",
           "mcuc_softmax_s8", "mcuc_requantize_s8", "mcuc_concat_s8", "mcuc_pad_s8", "mcuc_transpose_s8"]

I32 = ctypes.c_int32
I32x4 = I32 * 4
P8 = ctypes.POINTER(ctypes.c_int8)


class CBroadcast(ctypes.Structure):
    _fields_ = [("out_dims", I32x4), ("in1_strides", I32x4), ("in2_strides", I32x4)]


class CAddParams(ctypes.Structure):
    _fields_ = [(n, I32) for n in ("in1_offset", "in2_offset", "out_offset", "left_shift", "in1_mult",
                                   "in1_shift", "in2_mult", "in2_shift", "out_mult", "out_shift",
                                   "act_min", "act_max")]


class CMulParams(ctypes.Structure):
    _fields_ = [(n, I32) for n in ("in1_offset", "in2_offset", "out_offset", "out_mult", "out_shift",
                                   "act_min", "act_max")]


class CPoolParams(ctypes.Structure):
    _fields_ = [(n, I32) for n in ("batches", "in_h", "in_w", "channels", "out_h", "out_w", "kernel_h",
                                   "kernel_w", "stride_h", "stride_w", "pad_top", "pad_left", "act_min",
                                   "act_max")]


class CSoftmaxParams(ctypes.Structure):
    _fields_ = [("rows", I32), ("row_size", I32), ("out_levels", I32), ("out_zp", I32)]


class CLutParams(ctypes.Structure):
    _fields_ = [("size", I32)]


class CRequantizeParams(ctypes.Structure):
    _fields_ = [("size", I32), ("in_zp", I32), ("out_zp", I32), ("mult", I32), ("shift", I32)]


class CConcatInput(ctypes.Structure):
    _fields_ = [(n, I32) for n in ("inner", "rescale", "in_zp", "out_zp", "mult", "shift")]


class CConcatParams(ctypes.Structure):
    _fields_ = [("outer", I32), ("n_inputs", I32), ("inputs", ctypes.POINTER(CConcatInput))]


class CPadParams(ctypes.Structure):
    _fields_ = [("in_dims", I32x4), ("out_dims", I32x4), ("pad_before", I32x4), ("pad_value", I32)]


class CTransposeParams(ctypes.Structure):
    _fields_ = [("out_dims", I32x4), ("in_strides", I32x4)]


def to_c(cls: type[ctypes.Structure], params: Any) -> ctypes.Structure:
    """Fill a ctypes struct from the same-named fields of a params dataclass."""
    vals = []
    for field in cls._fields_:
        ftype = field[1]
        v = getattr(params, field[0])
        vals.append(ftype(*v) if isinstance(v, tuple) else int(v))
    return cls(*vals)


def ptr(a: np.ndarray) -> Any:
    assert a.dtype == np.int8 and a.flags.c_contiguous
    return a.ctypes.data_as(P8)


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    return build_shared(SOURCES)


def rand_zp(rng: np.random.Generator) -> int:
    return int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))


def rand_scale(rng: np.random.Generator, lo: float = -3.0, hi: float = 0.0) -> float:
    return float(10.0 ** rng.uniform(lo, hi))


def rand_act(rng: np.random.Generator) -> tuple[int, int]:
    if rng.random() < 0.6:
        return -128, 127
    a, b = sorted(int(v) for v in rng.integers(-128, 128, size=2))
    return a, b


def rand_i8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.ascontiguousarray(rng.integers(-128, 128, size=shape, dtype=np.int8))


def float_q(y: np.ndarray, scale: float, zp: int, lo: int = -128, hi: int = 127) -> np.ndarray:
    """Float result quantized with round-half-even and clamped: what the int kernel approximates."""
    return np.clip(quantize_array(y, scale, zp).astype(np.int64), lo, hi)


def assert_within_1lsb(got: np.ndarray, want: np.ndarray) -> None:
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max(initial=0) <= 1, f"max diff {diff.max()}"


def rand_broadcast_pair(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rank = int(rng.integers(1, 5))
    out = tuple(int(d) for d in rng.choice([1, 2, 3, 5, 7, 9], size=rank))

    def operand() -> tuple[int, ...]:
        s = tuple(d if rng.random() < 0.6 else 1 for d in out)
        return s[int(rng.integers(0, rank)):] if rng.random() < 0.3 else s

    return operand(), operand()


# -------------------------------------------------------------------------------- add/sub/mul

BINARY_CASES = [
    ((1, 7, 7, 16), (1, 1, 1, 16)),  # squeeze-excite scale
    ((1, 5, 9, 3), (1, 5, 9, 3)),
    ((2, 3, 1, 5), (1, 1, 4, 1)),  # both sides broadcast
    ((7,), (3, 1)),
    ((), (2, 3)),
    ((1, 1, 1, 1, 3, 5), (5,)),  # rank > 4 with leading ones
]


def _run_binary(lib: ctypes.CDLL, fn: str, a: np.ndarray, b: np.ndarray, params: Any, cls: type,
                out: np.ndarray | None = None) -> np.ndarray:
    shape = prepare_broadcast(a.shape, b.shape)
    if out is None:
        out = np.zeros(np.broadcast_shapes(a.shape, b.shape), dtype=np.int8)
    getattr(lib, fn)(ctypes.byref(to_c(cls, params)), ctypes.byref(to_c(CBroadcast, shape)),
                     ptr(a), ptr(b), ptr(out))
    return out


@pytest.mark.parametrize("op", ["add", "sub", "mul"])
def test_binary_parity_and_float(lib: ctypes.CDLL, op: str) -> None:
    rng = np.random.default_rng({"add": 1, "sub": 2, "mul": 3}[op])
    pairs = BINARY_CASES + [rand_broadcast_pair(rng) for _ in range(60)]
    for i, (sa, sb) in enumerate(pairs):
        a, b = rand_i8(rng, sa), rand_i8(rng, sb)
        s1, s2, so = rand_scale(rng), rand_scale(rng), rand_scale(rng)
        z1, z2, zo = rand_zp(rng), rand_zp(rng), rand_zp(rng)
        lo, hi = rand_act(rng)
        fa = dequantize_array(a, s1, z1).astype(np.float64)
        fb = dequantize_array(b, s2, z2).astype(np.float64)
        if op == "mul":
            cls: type[ctypes.Structure] = CMulParams
            p: Any = prepare_mul(s1, z1, s2, z2, so, zo, lo, hi)
            ref, fy = mul_s8(p, a, b), fa * fb
        else:
            p = (prepare_add if op == "add" else prepare_sub)(s1, z1, s2, z2, so, zo, lo, hi)
            ref = (add_s8 if op == "add" else sub_s8)(p, a, b)
            fy, cls = (fa + fb if op == "add" else fa - fb), CAddParams
        got = _run_binary(lib, f"mcuc_{op}_s8", a, b, p, cls)
        assert got.shape == ref.shape
        np.testing.assert_array_equal(got, ref, err_msg=f"case {i}: {sa} {sb}")
        assert_within_1lsb(ref, float_q(fy, so, zo, lo, hi))


def test_binary_extreme_scale_ratios(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(4)
    a, b = rand_i8(rng, (1, 3, 5, 8)), rand_i8(rng, (1, 1, 1, 8))
    for s1, s2, so in [(1e-3, 1.0, 1e-3), (1.0, 1e-3, 1.0), (1e-3, 1e-3, 1.0), (1.0, 1.0, 1e-3)]:
        for zp in (-128, 127):
            for op in ("add", "sub", "mul"):
                cls: type[ctypes.Structure] = CMulParams
                if op == "mul":
                    p: Any = prepare_mul(s1, zp, s2, -zp - 1, so, zp)
                    ref = mul_s8(p, a, b)
                else:
                    p = prepare_add(s1, zp, s2, -zp - 1, so, zp)
                    ref, cls = (add_s8 if op == "add" else sub_s8)(p, a, b), CAddParams
                np.testing.assert_array_equal(_run_binary(lib, f"mcuc_{op}_s8", a, b, p, cls), ref)


def test_binary_in_place(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(5)
    a, b = rand_i8(rng, (1, 6, 5, 7)), rand_i8(rng, (1, 1, 5, 1))
    p = prepare_add(0.05, 3, 0.02, -7, 0.06, -1)
    ref = add_s8(p, a, b)
    out = a.copy()
    _run_binary(lib, "mcuc_add_s8", out, b, p, CAddParams, out=out)
    np.testing.assert_array_equal(out, ref)
    pm = prepare_mul(0.05, 3, 0.02, -7, 0.01, -1)
    refm = mul_s8(pm, b, a)
    out = a.copy()
    _run_binary(lib, "mcuc_mul_s8", b, out, pm, CMulParams, out=out)
    np.testing.assert_array_equal(out, refm)


def test_binary_large_squeeze_excite(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(6)
    a, b = rand_i8(rng, (1, 112, 112, 96)), rand_i8(rng, (1, 1, 1, 96))
    pm = prepare_mul(0.02, -5, 1 / 255, -128, 0.03, 4)
    np.testing.assert_array_equal(_run_binary(lib, "mcuc_mul_s8", a, b, pm, CMulParams), mul_s8(pm, a, b))
    pa = prepare_add(0.02, -5, 0.07, 3, 0.05, -2, 0, 127)
    np.testing.assert_array_equal(_run_binary(lib, "mcuc_add_s8", a, a, pa, CAddParams), add_s8(pa, a, a))


# -------------------------------------------------------------------------------- pooling

def _brute_pool(x: np.ndarray, kind: str, p: Any) -> np.ndarray:
    """Straight transcription of TFLite's reference pooling loops (small inputs only)."""
    out = np.zeros(p.out_shape, dtype=np.int64)
    for oy in range(p.out_h):
        for ox in range(p.out_w):
            y0, x0 = oy * p.stride_h - p.pad_top, ox * p.stride_w - p.pad_left
            win = x[:, max(y0, 0):max(min(y0 + p.kernel_h, p.in_h), 0),
                    max(x0, 0):max(min(x0 + p.kernel_w, p.in_w), 0), :].astype(np.int64)
            n = win.shape[1] * win.shape[2]
            if kind == "max":
                out[:, oy, ox] = win.max(axis=(1, 2)) if n else -128
            else:
                s = win.sum(axis=(1, 2))
                out[:, oy, ox] = np.where(s > 0, (s + n // 2) // max(n, 1), -((n // 2 - s) // max(n, 1)))
    return np.clip(out, p.act_min, p.act_max)


def _rand_pool(rng: np.random.Generator) -> tuple[np.ndarray, Any]:
    n, h, w, c = (int(v) for v in (rng.integers(1, 3), rng.integers(1, 12), rng.integers(1, 12),
                                   rng.integers(1, 9)))
    top, left, bottom, right = (int(v) for v in rng.integers(0, 3, size=4))
    kh = int(rng.integers(1, min(h + top + bottom, 5) + 1))
    kw = int(rng.integers(1, min(w + left + right, 5) + 1))
    strides = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    p = prepare_pool((n, h, w, c), (kh, kw), strides, (top, left, bottom, right), *rand_act(rng))
    return rand_i8(rng, (n, h, w, c)), p


@pytest.mark.parametrize("kind", ["avg", "max"])
def test_pool_parity_and_float(lib: ctypes.CDLL, kind: str) -> None:
    rng = np.random.default_rng(10 if kind == "avg" else 11)
    ref_fn, cfn = (avgpool_s8, lib.mcuc_avgpool_s8) if kind == "avg" else (maxpool_s8, lib.mcuc_maxpool_s8)
    for i in range(80):
        x, p = _rand_pool(rng)
        ref = ref_fn(p, x)
        got = np.zeros(p.out_shape, dtype=np.int8)
        cfn(ctypes.byref(to_c(CPoolParams, p)), ptr(x), ptr(got))
        np.testing.assert_array_equal(got, ref, err_msg=f"case {i}: {p}")
        np.testing.assert_array_equal(ref, _brute_pool(x, kind, p))
        if kind == "avg":  # float mean of in-bounds taps, same scale and zero point in and out
            s, zp = rand_scale(rng), rand_zp(rng)
            xf = dequantize_array(x, s, zp).astype(np.float64)
            means = np.zeros(p.out_shape)
            for oy in range(p.out_h):
                for ox in range(p.out_w):
                    y0, x0 = oy * p.stride_h - p.pad_top, ox * p.stride_w - p.pad_left
                    win = xf[:, max(y0, 0):max(y0 + p.kernel_h, 0), max(x0, 0):max(x0 + p.kernel_w, 0)]
                    means[:, oy, ox] = win.mean(axis=(1, 2)) if win.size else -zp * s  # no tap: int 0
            assert_within_1lsb(ref, float_q(means, s, zp, p.act_min, p.act_max))


def test_global_avgpool_large(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(12)
    x = rand_i8(rng, (1, 112, 112, 96))
    p = prepare_global_avgpool(x.shape)  # type: ignore[arg-type]
    ref = avgpool_s8(p, x)
    got = np.zeros(p.out_shape, dtype=np.int8)
    lib.mcuc_avgpool_s8(ctypes.byref(to_c(CPoolParams, p)), ptr(x), ptr(got))
    np.testing.assert_array_equal(got, ref)
    sums = x.astype(np.int64).sum(axis=(1, 2))
    want = np.where(sums > 0, (sums + 6272) // 12544, -((6272 - sums) // 12544))
    np.testing.assert_array_equal(ref.reshape(-1), want.reshape(-1))


def test_maxpool_large_reference_matches_c(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(13)
    x = rand_i8(rng, (1, 112, 112, 96))
    p = prepare_pool(x.shape, (3, 3), (2, 2), (1, 1, 1, 1), act_min=-3)  # type: ignore[arg-type]
    got = np.zeros(p.out_shape, dtype=np.int8)
    lib.mcuc_maxpool_s8(ctypes.byref(to_c(CPoolParams, p)), ptr(x), ptr(got))
    np.testing.assert_array_equal(got, maxpool_s8(p, x))


# -------------------------------------------------------------------------------- LUT

def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


LUT_FNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "hardsigmoid": lambda v: np.clip(v / 6.0 + 0.5, 0.0, 1.0),
    "hardswish": lambda v: v * np.clip(v / 6.0 + 0.5, 0.0, 1.0),
    "relu": lambda v: np.maximum(v, 0.0),
    "gelu": _gelu,
    "tanh": np.tanh,
}


@pytest.mark.parametrize("name", sorted(LUT_FNS))
def test_lut_parity_and_float(lib: ctypes.CDLL, name: str) -> None:
    rng = np.random.default_rng(sorted(LUT_FNS).index(name) + 20)
    fn = LUT_FNS[name]
    for _ in range(8):
        s_in, s_out = rand_scale(rng, -2.5, -0.5), rand_scale(rng, -3, -1)
        z_in, z_out = rand_zp(rng), rand_zp(rng)
        table = make_lut(fn, s_in, z_in, s_out, z_out)
        x = rand_i8(rng, (int(rng.integers(1, 400)),))
        ref = lut_s8(table, x)
        got = np.zeros_like(x)
        lib.mcuc_lut_s8(ctypes.byref(CLutParams(x.size)), ptr(table), ptr(x), ptr(got))
        np.testing.assert_array_equal(got, ref)
        want = float_q(fn(dequantize_array(x, s_in, z_in).astype(np.float64)), s_out, z_out)
        np.testing.assert_array_equal(ref, want)
        lib.mcuc_lut_s8(ctypes.byref(CLutParams(x.size)), ptr(table), ptr(x), ptr(x))  # in place
        np.testing.assert_array_equal(x, ref)


# -------------------------------------------------------------------------------- softmax

def _run_softmax(lib: ctypes.CDLL, x: np.ndarray, p: Any, out: np.ndarray | None = None) -> np.ndarray:
    table = np.ascontiguousarray(p.exp_table, dtype=np.uint32)
    out = np.zeros_like(x) if out is None else out
    lib.mcuc_softmax_s8(ctypes.byref(to_c(CSoftmaxParams, p)),
                        table.ctypes.data_as(ctypes.POINTER(ctypes.c_uint32)), ptr(x), ptr(out))
    return out


def test_softmax_parity_and_float(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(30)
    for i in range(60):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(d) for d in rng.integers(1, 6, size=rank - 1)) + (int(rng.integers(1, 65)),)
        s_in, zp, beta = rand_scale(rng, -3, 0), rand_zp(rng), float(rng.choice([1.0, 0.5, 2.0]))
        x = rand_i8(rng, shape)
        if i % 5 == 0:  # peaked rows: most entries far below the max
            x = np.where(rng.random(shape) < 0.9, np.int8(-128), x).astype(np.int8)
        # TFLite's output parameters, onnxruntime's QDQ ones (1/255, -128), and any 1/L with any zero point
        levels, out_zp = [(256, OUTPUT_ZERO_POINT), (255, -128),
                          (int(rng.integers(1, 257)), int(rng.integers(-128, 128)))][i % 3]
        p = prepare_softmax(shape, s_in, beta, 1.0 / levels, out_zp)
        ref = softmax_s8(p, x)
        np.testing.assert_array_equal(_run_softmax(lib, x, p), ref, err_msg=f"case {i}")
        xf = dequantize_array(x, s_in, zp).astype(np.float64) * beta
        e = np.exp(xf - xf.max(axis=-1, keepdims=True))
        want = float_q(e / e.sum(axis=-1, keepdims=True), 1.0 / levels, out_zp)
        assert_within_1lsb(ref, want)
        inplace = x.copy()
        _run_softmax(lib, inplace, p, out=inplace)
        np.testing.assert_array_equal(inplace, ref)


def test_softmax_long_rows(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(31)
    for n in (1000, 65535):
        x = np.full((2, n), -128, dtype=np.int8)  # all equal: sum is n * 2^16, the uint32 worst case
        x[1] = rand_i8(rng, (n,))
        for s_in in (1e-4, 0.1):
            p = prepare_softmax(x.shape, s_in)
            ref = softmax_s8(p, x)
            np.testing.assert_array_equal(_run_softmax(lib, x, p), ref)
    with pytest.raises(ValueError):
        prepare_softmax((1, 65536), 0.1)


# -------------------------------------------------------------------------------- requantize

def test_requantize_parity_and_float(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(40)
    for ratio_exp in np.linspace(-3, 3, 25):
        s_in = rand_scale(rng, -3, -1)
        s_out = s_in / 10.0 ** ratio_exp
        zi, zo = rand_zp(rng), rand_zp(rng)
        x = rand_i8(rng, (int(rng.integers(1, 300)),))
        p = prepare_requantize(x.shape, s_in, zi, s_out, zo)
        ref = requantize_s8(p, x)
        got = np.zeros_like(x)
        lib.mcuc_requantize_s8(ctypes.byref(to_c(CRequantizeParams, p)), ptr(x), ptr(got))
        np.testing.assert_array_equal(got, ref)
        assert_within_1lsb(ref, float_q(dequantize_array(x, s_in, zi).astype(np.float64), s_out, zo))
        lib.mcuc_requantize_s8(ctypes.byref(to_c(CRequantizeParams, p)), ptr(x), ptr(x))
        np.testing.assert_array_equal(x, ref)


# -------------------------------------------------------------------------------- concat

def test_concat_parity_and_float(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(50)
    for i in range(60):
        rank = int(rng.integers(1, 5))
        base = [int(d) for d in rng.integers(1, 6, size=rank)]
        axis = int(rng.integers(0, rank))
        n_in = int(rng.integers(1, 5))
        shapes = []
        for _ in range(n_in):
            s = list(base)
            s[axis] = int(rng.integers(1, 6))
            shapes.append(tuple(s))
        out_q = (rand_scale(rng), rand_zp(rng))
        in_q = [out_q if rng.random() < 0.4 else (out_q[0] * 10.0 ** rng.uniform(-3, 3), rand_zp(rng))
                for _ in shapes]
        p = prepare_concat(shapes, axis - rank if i % 3 == 0 else axis, in_q, out_q)
        xs = [rand_i8(rng, s) for s in shapes]
        ref = concat_s8(p, xs)
        got = np.zeros(p.out_shape, dtype=np.int8)
        cin = (CConcatInput * n_in)(*[to_c(CConcatInput, ci) for ci in p.inputs])
        cptrs = (P8 * n_in)(*[ptr(x) for x in xs])
        lib.mcuc_concat_s8(ctypes.byref(CConcatParams(p.outer, n_in, cin)), cptrs, ptr(got))
        np.testing.assert_array_equal(got, ref, err_msg=f"case {i}")
        want = np.concatenate([float_q(dequantize_array(x, *q).astype(np.float64), *out_q)
                               for x, q in zip(xs, in_q, strict=True)], axis=axis)
        assert_within_1lsb(ref, want)
        for q, ci in zip(in_q, p.inputs, strict=True):
            assert ci.rescale == (q != out_q)


# -------------------------------------------------------------------------------- pad, transpose

def test_pad_parity(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(60)
    for _ in range(60):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(d) for d in rng.integers(1, 7, size=rank))
        pads = [(int(b), int(a)) for b, a in rng.integers(0, 4, size=(rank, 2))]
        zp = rand_zp(rng)
        p = prepare_pad(shape, pads, zp)
        x = rand_i8(rng, shape)
        ref = pad_s8(p, x)
        np.testing.assert_array_equal(ref, np.pad(x, pads, constant_values=zp))
        got = np.zeros(ref.shape, dtype=np.int8)
        lib.mcuc_pad_s8(ctypes.byref(to_c(CPadParams, p)), ptr(x), ptr(got))
        np.testing.assert_array_equal(got, ref)


def test_transpose_parity(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(70)
    for _ in range(60):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(d) for d in rng.integers(1, 7, size=rank))
        perm = tuple(int(a) for a in rng.permutation(rank))
        p = prepare_transpose(shape, perm)
        x = rand_i8(rng, shape)
        ref = transpose_s8(p, x)
        np.testing.assert_array_equal(ref, np.transpose(x, perm))
        got = np.zeros(ref.shape, dtype=np.int8)
        lib.mcuc_transpose_s8(ctypes.byref(to_c(CTransposeParams, p)), ptr(x), ptr(got))
        np.testing.assert_array_equal(got, ref)
