"""Transformer int8 kernels: C vs numpy reference parity (0 LSB) over random shapes, and reference vs float."""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import pytest

from mcuc.quant import dequantize_array, quantize_array
from mcuc.reference.transformer import (
    batch_matmul_s8,
    gather_s8,
    isqrt_u62,
    layernorm_s8,
    mean_s8,
    prepare_batch_matmul,
    prepare_gather,
    prepare_layernorm,
    prepare_mean,
    prepare_slice,
    simplify_slice,
    simplify_transpose,
    slice_s8,
)
from tests.cbuild import build_shared

SOURCES = ["mcuc_layernorm_s8", "mcuc_batch_matmul_s8", "mcuc_mean_s8", "mcuc_slice_s8", "mcuc_gather_s8"]

I32 = ctypes.c_int32
I64 = ctypes.c_int64
I32x2 = I32 * 2
I32x4 = I32 * 4


class CLayerNormParams(ctypes.Structure):
    _fields_ = [("rows", I32), ("row_size", I32), ("eps_v", I64), ("out_shift", I32), ("out_zp", I32)]


class CBatchMatmulParams(ctypes.Structure):
    _fields_ = [("batch", I32x2), ("m", I32), ("k", I32), ("n", I32), ("a_batch_strides", I32x2),
                ("b_batch_strides", I32x2)]
    _fields_ += [(f, I32) for f in ("b_k_stride", "b_n_stride", "a_offset", "b_offset", "out_zp", "out_mult",
                                    "out_shift", "act_min", "act_max")]


class CMeanParams(ctypes.Structure):
    _fields_ = [(f, I32) for f in ("outer", "reduce", "inner", "in_zp", "out_zp", "mult", "shift")]


class CSliceParams(ctypes.Structure):
    _fields_ = [("out_dims", I32x4), ("in_strides", I32x4), ("offset", I32)]


class CGatherParams(ctypes.Structure):
    _fields_ = [(f, I32) for f in ("outer", "axis_size", "inner", "n_indices")]


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    return build_shared(SOURCES)


def _ptr(a: np.ndarray, ctype: Any = ctypes.c_int8) -> Any:
    return a.ctypes.data_as(ctypes.POINTER(ctype))


def _struct(cls: type, params: Any, **override: Any) -> Any:
    vals = {}
    for name, _ in cls._fields_:
        v = override.get(name, getattr(params, name, None))
        vals[name] = dict(cls._fields_)[name](*v) if isinstance(v, tuple) else v
    return cls(**vals)


def _rand_int8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform int8, sometimes saturated or constant rows, to exercise the extremes."""
    kind = rng.integers(0, 4)
    if kind == 0:
        return rng.choice(np.array([-128, 127], np.int8), size=shape)
    if kind == 1 and shape:
        row = rng.integers(-128, 128, size=shape[:-1] + (1,))
        return np.broadcast_to(row, shape).astype(np.int8).copy()
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def _zp(rng: np.random.Generator) -> int:
    return int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))


# ---- layernorm -----------------------------------------------------------------------------


def _run_layernorm(lib: ctypes.CDLL, x: np.ndarray, p: Any) -> np.ndarray:
    out = np.zeros_like(x)
    gm = np.ascontiguousarray(p.gamma_mult, np.int32)
    bb = np.ascontiguousarray(p.beta_bias, np.int64)
    cp = _struct(CLayerNormParams, p)
    lib.mcuc_layernorm_s8(ctypes.byref(cp), _ptr(gm, I32), _ptr(bb, I64), _ptr(x), _ptr(out))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_layernorm_c_matches_reference(lib: ctypes.CDLL, seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = int(rng.choice([1, 2, 3, 5, 16, 17, 48, 64, 97, 192, 768, 4099]))
    shape = tuple(int(d) for d in rng.integers(1, 5, size=rng.integers(0, 3))) + (c,)
    s_in = float(10 ** rng.uniform(-4, 0))
    s_out = float(10 ** rng.uniform(-3, 0))
    gamma = rng.normal(0, 10 ** rng.uniform(-2, 1), c) * rng.choice([0, 1], c, p=[0.1, 0.9])
    beta = rng.normal(0, 10 ** rng.uniform(-3, 0.5), c)
    eps = float(rng.choice([0.0, 1e-6, 1e-5, 1e-2]))
    p = prepare_layernorm(shape, s_in, gamma, beta, eps, s_out, _zp(rng))
    x = _rand_int8(rng, shape)
    ref = layernorm_s8(p, x)
    got = _run_layernorm(lib, x, p)
    assert np.array_equal(ref, got)
    # in place, as the planner may place it
    y = x.copy()
    lib.mcuc_layernorm_s8(ctypes.byref(_struct(CLayerNormParams, p)), _ptr(np.ascontiguousarray(p.gamma_mult), I32),
                          _ptr(np.ascontiguousarray(p.beta_bias), I64), _ptr(y), _ptr(y))
    assert np.array_equal(ref, y)


@pytest.mark.parametrize("seed", range(12))
def test_layernorm_reference_close_to_float(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    c = int(rng.choice([4, 16, 31, 64, 192]))
    shape = (int(rng.integers(1, 9)), c)
    s_in, zp_in = float(rng.uniform(0.005, 0.2)), int(rng.integers(-60, 60))
    gamma, beta = rng.normal(1, 0.5, c), rng.normal(0, 0.3, c)
    s_out, zp_out = float(rng.uniform(0.01, 0.05)), int(rng.integers(-20, 20))
    x = rng.integers(-128, 128, size=shape).astype(np.int8)
    p = prepare_layernorm(shape, s_in, gamma, beta, 1e-5, s_out, zp_out)
    xf = dequantize_array(x, s_in, zp_in).astype(np.float64)
    mu = xf.mean(-1, keepdims=True)
    yf = (xf - mu) / np.sqrt(((xf - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * gamma + beta
    want = quantize_array(yf, s_out, zp_out).astype(np.int32)
    got = layernorm_s8(p, x).astype(np.int32)
    assert np.abs(want - got).max() <= 1


def test_isqrt_exact() -> None:
    rng = np.random.default_rng(0)
    w = np.concatenate([rng.integers(1 << 60, 1 << 62, 20000, dtype=np.int64),
                        np.array([1 << 60, (1 << 62) - 1, (1 << 61), 0, 1, 2, 3, 4], np.int64)])
    r = isqrt_u62(w)
    import math

    assert all(int(a) == math.isqrt(int(b)) for a, b in zip(r, w, strict=True))


# ---- batch matmul --------------------------------------------------------------------------


def _bmm_shapes(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    m, k, n = (int(v) for v in rng.integers(1, 20, 3))
    k = int(rng.choice([k, 1, 64, 129]))
    rank = int(rng.integers(2, 5))
    batch = tuple(int(v) for v in rng.integers(1, 4, rank - 2))
    ba = tuple(d if rng.random() < 0.7 else 1 for d in batch)
    bb = tuple(d if rng.random() < 0.7 else 1 for d in batch)
    ra, rb = (ba + (m, k)), (bb + (k, n))
    if rng.random() < 0.2 and len(ra) > 2:
        ra = ra[1:]  # lower-rank operand broadcasts
    return ra, rb


def _run_bmm(lib: ctypes.CDLL, a: np.ndarray, b: np.ndarray, p: Any, out_shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(out_shape, np.int8)
    lib.mcuc_batch_matmul_s8(ctypes.byref(_struct(CBatchMatmulParams, p)), _ptr(a), _ptr(b), _ptr(out))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_batch_matmul_c_matches_reference(lib: ctypes.CDLL, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sa_, sb_ = _bmm_shapes(rng)
    a, b = _rand_int8(rng, sa_), _rand_int8(rng, sb_)
    sa, sb = float(10 ** rng.uniform(-3, -0.5)), float(10 ** rng.uniform(-3, -0.5))
    s_out = sa * sb * float(10 ** rng.uniform(0.5, 3))
    lo, zps = int(rng.integers(-128, 0)), (_zp(rng), _zp(rng), _zp(rng))
    hi = int(rng.integers(lo, 128))
    p = prepare_batch_matmul(sa_, sb_, sa, zps[0], sb, zps[1], s_out, zps[2], lo, hi)
    ref = batch_matmul_s8(p, a, b)
    assert ref.shape == np.matmul(np.zeros(sa_), np.zeros(sb_)).shape
    assert np.array_equal(ref, _run_bmm(lib, a, b, p, ref.shape))
    # the same product with b stored transposed ([..., N, K])
    bt = np.ascontiguousarray(np.swapaxes(b, -1, -2))
    pt = prepare_batch_matmul(sa_, bt.shape, sa, zps[0], sb, zps[1], s_out, zps[2], lo, hi, transpose_b=True)
    assert np.array_equal(batch_matmul_s8(pt, a, bt), ref)
    assert np.array_equal(_run_bmm(lib, a, bt, pt, ref.shape), ref)


@pytest.mark.parametrize("seed", range(8))
def test_batch_matmul_reference_close_to_float(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    sa_, sb_ = (2, 7, 12), (2, 12, 5)
    a, b = rng.integers(-128, 128, sa_).astype(np.int8), rng.integers(-128, 128, sb_).astype(np.int8)
    sa, za, sb, zb = 0.02, int(rng.integers(-50, 50)), 0.03, int(rng.integers(-50, 50))
    real = np.matmul(dequantize_array(a, sa, za).astype(np.float64), dequantize_array(b, sb, zb).astype(np.float64))
    s_out = float(np.abs(real).max()) / 120.0
    p = prepare_batch_matmul(sa_, sb_, sa, za, sb, zb, s_out, 0)
    got = batch_matmul_s8(p, a, b).astype(np.int32)
    assert np.abs(got - quantize_array(real, s_out, 0).astype(np.int32)).max() <= 1


# ---- mean ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_mean_c_matches_reference(lib: ctypes.CDLL, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 9, size=rng.integers(1, 5)))
    a0 = int(rng.integers(0, len(shape)))
    a1 = int(rng.integers(a0, len(shape)))
    axes = tuple(range(a0, a1 + 1))
    s_in, s_out = float(10 ** rng.uniform(-3, 0)), float(10 ** rng.uniform(-3, 0))
    p = prepare_mean(shape, axes, s_in, _zp(rng), s_out, _zp(rng))
    x = _rand_int8(rng, shape)
    ref = mean_s8(p, x)
    out = np.zeros((p.outer, p.inner), np.int8)
    lib.mcuc_mean_s8(ctypes.byref(_struct(CMeanParams, p)), _ptr(x), _ptr(out))
    assert np.array_equal(ref, out)
    real = dequantize_array(x, s_in, p.in_zp).astype(np.float64).mean(axis=axes)
    want = quantize_array(real, s_out, p.out_zp).astype(np.int32).reshape(ref.shape)
    assert np.abs(want - ref.astype(np.int32)).max() <= 1


def test_mean_rejects_non_consecutive_axes() -> None:
    with pytest.raises(ValueError, match="consecutive"):
        prepare_mean((1, 4, 5, 6), (1, 3), 0.1, 0, 0.1, 0)


# ---- slice, gather -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_slice_c_matches_numpy(lib: ctypes.CDLL, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 8, size=rng.integers(1, 6)))
    if len(shape) == 5:
        shape = (1,) + shape[1:]  # a leading batch of 1, as the frontend sees it
    starts = tuple(int(rng.integers(0, d)) for d in shape)
    ends = tuple(int(rng.integers(s + 1, d + 3)) for s, d in zip(starts, shape, strict=True))
    steps = tuple(int(rng.choice([1, 1, 2, 3])) for _ in shape)
    x = rng.integers(-128, 128, shape).astype(np.int8)
    want = x[tuple(slice(s, e, k) for s, e, k in zip(starts, ends, steps, strict=True))]
    sh, st, en, sp = simplify_slice(shape, starts, ends, steps)
    p = prepare_slice(sh, st, en, sp)
    assert np.array_equal(slice_s8(p, x).reshape(want.shape), want)
    out = np.zeros(want.size, np.int8)
    lib.mcuc_slice_s8(ctypes.byref(_struct(CSliceParams, p)), _ptr(np.ascontiguousarray(x)), _ptr(out))
    assert np.array_equal(out.reshape(want.shape), want)


@pytest.mark.parametrize("seed", range(30))
def test_gather_c_matches_numpy(lib: ctypes.CDLL, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 7, size=rng.integers(1, 5)))
    axis = int(rng.integers(0, len(shape)))
    idx = tuple(int(v) for v in rng.integers(0, shape[axis], size=rng.integers(1, 5)))
    x = rng.integers(-128, 128, shape).astype(np.int8)
    p = prepare_gather(shape, axis, idx)
    want = np.take(x, list(idx), axis=axis)
    assert np.array_equal(gather_s8(p, x).reshape(want.shape), want)
    out = np.zeros(want.size, np.int8)
    ind = np.ascontiguousarray(p.indices, np.int32)
    lib.mcuc_gather_s8(ctypes.byref(_struct(CGatherParams, p)), _ptr(ind, I32), _ptr(x), _ptr(out))
    assert np.array_equal(out.reshape(want.shape), want)


def test_simplify_transpose_keeps_element_order() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        shape = tuple(int(v) for v in rng.integers(1, 4, size=rng.integers(1, 7)))
        perm = tuple(int(v) for v in rng.permutation(len(shape)))
        x = np.arange(int(np.prod(shape))).reshape(shape)
        s2, p2 = simplify_transpose(shape, perm)
        assert np.array_equal(x.transpose(perm).ravel(), x.reshape(s2).transpose(p2).ravel())
    # the ViT qkv split: [1, T, 3, heads, d] -> [3, 1, heads, T, d] runs on the 4-D kernel
    assert len(simplify_transpose((1, 17, 3, 4, 8), (2, 0, 3, 1, 4))[0]) <= 4
